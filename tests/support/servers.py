"""Run an ASGI app on a free 127.0.0.1 port in a background thread, for tests and benchmarks."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["ThreadedServer", "free_port", "served_module", "stop_process"]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ask a child process to stop; kill it when it does not within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def served_module(
    module: str,
    log_path: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 30,
) -> Iterator[int]:
    """`python -m module --port PORT *args` on a free loopback port, stopped on exit; yields
    the port once it listens. Its output goes to `log_path`, shown when it fails to start."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited early:\n{log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{module} did not listen:\n{log_path.read_text()}"
                    ) from None
                time.sleep(0.05)
        yield port
    finally:
        stop_process(process)


class ThreadedServer:
    """A real uvicorn server on loopback; `with ThreadedServer(app) as s: s.base_url`."""

    def __init__(self, app: Any, port: int | None = None, **uvicorn_options: Any) -> None:
        self.port = port or free_port()
        options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", **uvicorn_options}
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, **options)
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
