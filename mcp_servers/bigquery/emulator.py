"""`python -m mcp_servers.bigquery.emulator`: a local BigQuery with the sample marketplace.

The emulator is bqemulator (BigQuery's REST API over DuckDB), run in this process. Before it
serves, three things happen, all offline and idempotent:

1. DuckDB's spatial extension, which bqemulator needs and would otherwise download, is
   installed from the `duckdb-extension-spatial` package into an extension directory under the
   data folder, and every DuckDB database this process opens is told to look there.
2. The emulator starts on a private port and `seed.ensure_seeded` fills the dataset unless it
   already holds today's sample (seeding takes a few seconds).
3. It starts again on the requested port, so anything that answers there is ready and seeded.

`EmulatorProcess` runs the same command as a child process, for `switchboard run` and the tests.
"""

import argparse
import asyncio
import functools
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import duckdb
import httpx
from google.cloud import bigquery

from mcp_servers.bigquery.seed import DEFAULT_SEED, ensure_seeded
from mcp_servers.bigquery.warehouse import (
    DEFAULT_DATASET,
    EMULATOR_PROJECT,
    WarehouseSettings,
    make_client,
)

__all__ = ["EmulatorError", "EmulatorProcess", "main", "prepare_extensions", "serve"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class EmulatorError(RuntimeError):
    """The emulator could not be prepared or did not come up."""


def _spatial_source() -> Path:
    import duckdb_extension_spatial

    package = Path(duckdb_extension_spatial.__file__).parent
    source = package / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not source.is_file():
        raise EmulatorError(
            f"duckdb-extension-spatial has no build for DuckDB {duckdb.__version__} ({source}); "
            "install the same version of both (see constraints.txt)"
        )
    return source


def _extension_config(directory: Path) -> dict[str, Any]:
    # No automatic downloads: a query needing a missing extension fails at once instead of
    # waiting on a network this emulator is not meant to use.
    return {"extension_directory": str(directory), "autoinstall_known_extensions": False}


def prepare_extensions(directory: Path) -> Path:
    """Install DuckDB's spatial extension into `directory` from its PyPI package, once.

    DuckDB keeps extensions as `<directory>/v<version>/<platform>/<name>.duckdb_extension`;
    `INSTALL '<file>'` copies the package's file there. A later `INSTALL spatial` (which
    bqemulator runs at every start) then finds it and downloads nothing.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(config=_extension_config(directory)) as conn:
        row = conn.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'spatial'"
        ).fetchone()
        if not (row and row[0]):
            source = str(_spatial_source()).replace("'", "''")
            conn.execute(f"INSTALL '{source}'")
    return directory


def _use_extension_directory(directory: Path) -> None:
    """Make every DuckDB database this process opens use `directory` for its extensions.

    bqemulator opens its databases with a bare `duckdb.connect(path)`, and DuckDB reads the
    extension directory from each database's config only (no environment variable), so the
    config is added here, in the emulator's own process.
    """
    original = duckdb.connect
    if getattr(original, "__switchboard_extensions__", None) == directory:
        return
    original = getattr(original, "__wrapped__", original)

    @functools.wraps(original)
    def connect(database: Any = ":memory:", read_only: bool = False, config: Any = None) -> Any:
        return original(database, read_only, {**_extension_config(directory), **(config or {})})

    # A mark on the wrapper, so that a second call sees duckdb.connect is already wrapped.
    connect.__switchboard_extensions__ = directory  # type: ignore[attr-defined]
    duckdb.connect = connect


def _bqemulator_settings(*, host: str, port: int, data_dir: Path, project: str) -> Any:
    from bqemulator.config import LogFormat, LogLevel, PersistenceMode, Settings

    return Settings(
        rest_host=host,
        rest_port=port,
        grpc_host=host,
        grpc_port=0,  # the Storage API's gRPC port is unused here: any free one
        persistence_mode=PersistenceMode.PERSISTENT,
        data_dir=data_dir,
        default_project_id=project,
        enable_format_extensions=False,  # Avro import/export would download an extension
        log_level=LogLevel.WARNING,
        log_format=LogFormat.CONSOLE,
    )


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 9050,
    data_dir: Path,
    project: str = EMULATOR_PROJECT,
    dataset: str = DEFAULT_DATASET,
    today: date | None = None,
    seed: int = DEFAULT_SEED,
    extension_dir: Path | None = None,
) -> None:
    """Run the emulator on `host:port` until SIGINT or SIGTERM, seeded for `today` first."""
    from bqemulator.config import LogFormat, LogLevel
    from bqemulator.observability.logging_ import configure_logging

    # Before bqemulator's server module is imported: it logs at import time, to stdout.
    configure_logging(level=LogLevel.WARNING, fmt=LogFormat.CONSOLE)
    from bqemulator.server import EmulatorServer

    started = time.monotonic()
    extensions = await asyncio.to_thread(
        prepare_extensions, extension_dir or data_dir / "duckdb-extensions"
    )
    _use_extension_directory(extensions)
    today = today or datetime.now(UTC).date()

    def settings_on(port: int) -> Any:
        return _bqemulator_settings(host=host, port=port, data_dir=data_dir, project=project)

    private = EmulatorServer(settings_on(0))
    await private.start()
    seeding = time.monotonic()
    try:
        settings = WarehouseSettings(emulator=private.rest_url, project=project, dataset=dataset)
        seeded = await asyncio.to_thread(
            ensure_seeded, make_client(settings), dataset, today=today, seed=seed
        )
    finally:
        seeding = time.monotonic() - seeding
        await private.stop()

    server = EmulatorServer(settings_on(port))
    await server.start()
    state = f"seeded in {seeding:.1f} s" if seeded else "already seeded"
    print(
        f"BigQuery emulator on {server.rest_url}: project {project}, dataset {dataset} for "
        f"{today} ({state}); ready in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


class EmulatorProcess:
    """`python -m mcp_servers.bigquery.emulator` as a child process.

    `with EmulatorProcess(port=9050, data_dir=Path("data/bigquery")) as emulator:` returns
    once the emulator answers (and so is seeded); `emulator.client()` is an official client
    for it and `emulator.settings` the `WarehouseSettings` that point there.
    """

    def __init__(
        self,
        *,
        port: int,
        data_dir: Path,
        host: str = "127.0.0.1",
        project: str = EMULATOR_PROJECT,
        dataset: str = DEFAULT_DATASET,
        today: date | None = None,
        seed: int = DEFAULT_SEED,
        extension_dir: Path | None = None,
        log: IO[bytes] | None = None,
    ) -> None:
        self.host, self.port, self.project, self.dataset = host, port, project, dataset
        self.today, self.seed = today or datetime.now(UTC).date(), seed
        self._command = [sys.executable, "-m", "mcp_servers.bigquery.emulator"]
        self._command += ["--host", host, "--port", str(port)]
        self._command += ["--data-dir", str(data_dir.resolve())]
        self._command += ["--project", project, "--dataset", dataset]
        self._command += ["--today", self.today.isoformat(), "--seed", str(seed)]
        if extension_dir is not None:
            self._command += ["--extension-dir", str(extension_dir.resolve())]
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def settings(self) -> WarehouseSettings:
        return WarehouseSettings(emulator=self.url, project=self.project, dataset=self.dataset)

    def client(self) -> bigquery.Client:
        """A new official client for this emulator."""
        return make_client(self.settings)

    def start(self, timeout_s: float = 90) -> Self:
        """Start the child and wait until the seeded dataset answers."""
        if _listening(self.host, self.port):
            raise EmulatorError(f"something already listens on {self.host}:{self.port}")
        self._process = subprocess.Popen(
            self._command, cwd=REPO_ROOT, stdout=self._log, stderr=self._log
        )
        probe = f"{self.url}/bigquery/v2/projects/{self.project}/datasets/{self.dataset}"
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise EmulatorError(f"the emulator exited with code {self._process.returncode}")
            try:
                if httpx.get(probe, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"the emulator did not answer at {self.url} in {timeout_s} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Ask the child to stop; kill it when it does not within ten seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    settings = WarehouseSettings()
    parser = argparse.ArgumentParser(
        prog="python -m mcp_servers.bigquery.emulator",
        description="Serve a local BigQuery (bqemulator) seeded with the sample marketplace.",
    )
    parser.add_argument("--host", default=settings.emulator_host, help="address to listen on")
    parser.add_argument("--port", type=int, default=settings.emulator_port, help="REST port")
    parser.add_argument(
        "--data-dir", type=Path, default=settings.emulator_data_dir, help="DuckDB files go here"
    )
    parser.add_argument("--project", default=settings.project_id, help="project id to serve")
    parser.add_argument("--dataset", default=settings.dataset, help="dataset to seed")
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="seed the 60 days before this date (default: today, UTC)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed of the data")
    parser.add_argument(
        "--extension-dir",
        type=Path,
        default=None,
        help="DuckDB extension directory (default: DATA_DIR/duckdb-extensions)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                project=args.project,
                dataset=args.dataset,
                today=args.today,
                seed=args.seed,
                extension_dir=args.extension_dir,
            )
        )
    except (EmulatorError, OSError) as exc:
        parser.exit(1, f"bigquery emulator: {exc}\n")


if __name__ == "__main__":
    main()
