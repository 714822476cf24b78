"""Run an ASGI app on a free 127.0.0.1 port in a background thread, for tests and benchmarks."""

import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["ThreadedServer", "free_port", "stop_process"]


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
