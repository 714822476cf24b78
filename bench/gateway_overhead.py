"""What the hub's gateway adds to a chat completion: the same upstream called directly and
through the hub, at 1, 16 and 64 concurrent clients, streaming and not.

The upstream (tests' ScriptedUpstream answering after a fixed delay), the hub and this load
generator each run in their own process, so the load generator's GIL does not slow the servers.
A streamed call is timed to the end of its stream ([DONE]), not to its first token. Both
paths ask for usage in streams, so the upstream does the same work and sends the same bytes.
Direct and gateway calls alternate in slices, so a drift in the machine's load hits both.

The clients of a slice start spread over one upstream delay, as independent callers arrive,
and then each sends its next call as soon as the last one is answered. Started in the same
instant, with a fixed delay they would stay in lockstep: every call would queue behind the
63 that arrived with it, a thundering herd rather than steady load, and the figures would
swing by milliseconds from run to run with how the herds happen to line up.

    .venv/bin/python bench/gateway_overhead.py [--quick] [--delay-ms 50]

Writes bench/results/gateway_overhead.json.
"""

import argparse
import asyncio
import math
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

__all__ = [
    "Row",
    "bench_arguments",
    "hub_catalog",
    "hub_process",
    "main",
    "run_benchmark",
    "run_server",
    "serve_hub",
    "start_hub",
    "start_upstream",
    "upstream_and_hub",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "gateway_overhead.json"
TOKEN = "sb-bench-gateway-token"
MODEL = "bench-model"
UPSTREAM_MODEL = "scripted"
REPLY = " ".join(f"token{i}" for i in range(16))
CONCURRENCY = (1, 16, 64)
# Measured requests per cell (per path); a cell at 1 client is bounded by the delay.
REQUESTS = {1: 400, 16: 3200, 64: 6400}
QUICK_REQUESTS = {1: 60, 16: 480, 64: 1280}
SLICES = 4
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 5.0
STARTUP_TIMEOUT_S = 30.0


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Row:
    stream: bool
    concurrency: int
    direct_p50_ms: float
    direct_p99_ms: float
    gateway_p50_ms: float
    gateway_p99_ms: float
    added_p50_ms: float
    added_p99_ms: float
    gateway_rps: float


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    model: str
    headers: dict[str, str]

    def body(self, stream: bool) -> bytes:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": "How fast is the gateway?"}],
            "stream": stream,
        }
        if stream:
            request["stream_options"] = {"include_usage": True}
        return orjson.dumps(request)


@dataclass(slots=True)
class Samples:
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.latencies_s)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    # The servers run on uvloop; a load generator on the slower default loop would take more
    # of the two cores away from them.
    return uvloop.run(coroutine)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def start_upstream(delay_ms: float, *options: str) -> Iterator[str]:
    """Run bench/scripted_upstream.py in its own process (with more of its `options`); yield
    its base URL."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.scripted_upstream"),
            *("--delay-ms", str(delay_ms), "--reply", REPLY, *options),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http"):
            raise BenchError(f"the scripted upstream did not start (exit {process.poll()})")
        yield line
    finally:
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async def probe() -> bool:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.get(url) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server for {url} exited with code {process.returncode}")
        if asyncio.run(probe()):
            return
        time.sleep(0.1)
    raise BenchError(f"nothing answered at {url} within {STARTUP_TIMEOUT_S:.0f} s")


@contextmanager
def run_server(
    command: list[str], *, health_url: str, cwd: Path, env: dict[str, str], quiet: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process (its standard output dropped if `quiet`) until the
    context ends; yield the process once `health_url` answers 200."""
    stdout = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout)
    try:
        _wait_until_up(health_url, process)
        yield process
    finally:
        _stop(process)


@contextmanager
def start_hub(upstream_url: str, workdir: Path) -> Iterator[str]:
    """Run the hub under uvicorn in its own process on a SQLite file; yield its base URL."""
    with serve_hub(workdir, hub_catalog(upstream_url)) as url:
        yield url


def hub_catalog(upstream_url: str) -> list[dict[str, Any]]:
    """The hub's models: MODEL, served by the upstream at `upstream_url`."""
    deployment = {
        "provider": "openai-compatible",
        "base_url": upstream_url,
        "model": UPSTREAM_MODEL,
    }
    return [{"name": MODEL, "deployments": [deployment]}]


@contextmanager
def serve_hub(
    workdir: Path,
    models: list[dict[str, Any]],
    *,
    token: str = TOKEN,
    log_level: str = "warning",
    settings: dict[str, str] | None = None,
) -> Iterator[str]:
    """The hub under uvicorn in its own process, with `models` as its catalog, a SQLite file
    in `workdir`, `token` as the service token the load uses and the `SWITCHBOARD_*`
    `settings` given; yield its base URL."""
    with hub_process(workdir, models, token=token, log_level=log_level, settings=settings) as (
        url,
        _,
    ):
        yield url


@contextmanager
def hub_process(
    workdir: Path,
    models: list[dict[str, Any]],
    *,
    token: str = TOKEN,
    log_level: str = "warning",
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """serve_hub's hub; yield its base URL and its process."""
    catalog = workdir / "models.yaml"
    catalog.write_text(yaml.safe_dump({"models": models}))
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(workdir),
        "SWITCHBOARD_DATABASE_URL": f"sqlite:///{workdir / 'hub.db'}",
        "SWITCHBOARD_CATALOG_PATH": str(catalog),
        "SWITCHBOARD_APP_SERVICE_TOKEN": token,
        **(settings or {}),
    }
    # Breakers and limits stay in this hub's memory, whatever the developer's shell says.
    env.pop("REDIS_URL", None)
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "hub.main:create_app"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--log-level", log_level, "--no-access-log"),
    ]
    # The working directory is the temporary one so a developer's .env is not read.
    url = f"http://127.0.0.1:{port}"
    with run_server(command, health_url=url + "/healthz", cwd=workdir, env=env) as process:
        yield url, process


@contextmanager
def upstream_and_hub(delay_ms: float) -> Iterator[tuple[str, str]]:
    """The scripted upstream answering after `delay_ms` and a hub on a SQLite file in a
    temporary folder that serves it as MODEL, each in its own process; yield both base URLs."""
    with (
        tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp,
        start_upstream(delay_ms) as upstream_url,
        start_hub(upstream_url, Path(tmp)) as hub_url,
    ):
        yield upstream_url, hub_url


def bench_arguments(doc: str | None, results: Path) -> argparse.Namespace:
    """The options of a benchmark over the scripted upstream: --quick, --delay-ms, --output
    (`results` by default)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="the upstream's delay")
    parser.add_argument("--output", type=Path, default=results, help="where to write the rows")
    return parser.parse_args()


async def _call(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], stream: bool
) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise BenchError(f"{url} answered {response.status}: {await response.text()}")
        if stream:
            tail = b""
            async for data in response.content.iter_any():
                tail = (tail + data)[-64:]
            if b"[DONE]" not in tail:
                raise BenchError(f"{url} ended its stream without [DONE]")
        else:
            await response.read()
    return time.perf_counter() - started


async def _load(
    session: aiohttp.ClientSession,
    target: Target,
    *,
    stream: bool,
    concurrency: int,
    requests: int,
    spread_s: float,
    into: Samples,
) -> None:
    """Send `requests` calls from `concurrency` clients that each wait for their answer; the
    clients start evenly spread over `spread_s`."""
    body = target.body(stream)
    headers = {"content-type": "application/json", **target.headers}
    remaining = requests

    async def client(index: int) -> None:
        nonlocal remaining
        await asyncio.sleep(index * spread_s / concurrency)
        while remaining > 0:
            remaining -= 1
            into.latencies_s.append(await _call(session, target.url, body, headers, stream))

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(concurrency)))
    into.wall_s += time.perf_counter() - started


async def run_benchmark(
    upstream_url: str, hub_url: str, requests: dict[int, int], delay_s: float
) -> list[Row]:
    direct = Target(upstream_url + "/chat/completions", UPSTREAM_MODEL, {})
    gateway = Target(hub_url + "/v1/chat/completions", MODEL, {"authorization": f"Bearer {TOKEN}"})
    rows: list[Row] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for stream in (False, True):
            for concurrency in CONCURRENCY:
                options = {"stream": stream, "concurrency": concurrency, "spread_s": delay_s}
                for target in (direct, gateway):
                    # Warm-up: open the connections, fill caches, let the hub resolve the token.
                    warm = max(20, 4 * concurrency)
                    await _load(session, target, **options, requests=warm, into=Samples())
                direct_samples, gateway_samples = Samples(), Samples()
                count = requests[concurrency] // SLICES
                for _ in range(SLICES):
                    for target, into in ((direct, direct_samples), (gateway, gateway_samples)):
                        await _load(session, target, **options, requests=count, into=into)
                row = _row(stream, concurrency, direct_samples, gateway_samples)
                print(_format_row(row), flush=True)
                rows.append(row)
    return rows


def _row(stream: bool, concurrency: int, direct: Samples, gateway: Samples) -> Row:
    d50, d99 = direct.percentile_ms(50), direct.percentile_ms(99)
    g50, g99 = gateway.percentile_ms(50), gateway.percentile_ms(99)
    return Row(
        stream=stream,
        concurrency=concurrency,
        direct_p50_ms=round(d50, 3),
        direct_p99_ms=round(d99, 3),
        gateway_p50_ms=round(g50, 3),
        gateway_p99_ms=round(g99, 3),
        added_p50_ms=round(g50 - d50, 3),
        added_p99_ms=round(g99 - d99, 3),
        gateway_rps=round(len(gateway.latencies_s) / gateway.wall_s, 1),
    )


_HEADER = (
    f"{'stream':>6} {'clients':>7} {'direct p50':>10} {'direct p99':>10} {'gw p50':>8} "
    f"{'gw p99':>8} {'added p50':>9} {'added p99':>9} {'gw req/s':>8}"
)


def _format_row(row: Row) -> str:
    return (
        f"{'yes' if row.stream else 'no':>6} {row.concurrency:>7} {row.direct_p50_ms:>10.2f} "
        f"{row.direct_p99_ms:>10.2f} {row.gateway_p50_ms:>8.2f} {row.gateway_p99_ms:>8.2f} "
        f"{row.added_p50_ms:>9.2f} {row.added_p99_ms:>9.2f} {row.gateway_rps:>8.0f}"
    )


def main() -> int:
    args = bench_arguments(__doc__, RESULTS)
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    print(
        f"Upstream delay {args.delay_ms:g} ms; a reply of {len(REPLY.split())} tokens "
        "(a stream is timed to its end); requests per path and cell: "
        f"{', '.join(f'{n} at {c} clients' for c, n in requests.items())}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}.",
        flush=True,
    )
    print("Latencies in ms.\n" + _HEADER, flush=True)
    with upstream_and_hub(args.delay_ms) as (upstream_url, hub_url):
        rows = _run(run_benchmark(upstream_url, hub_url, requests, args.delay_ms / 1000))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps([asdict(row) for row in rows], option=orjson.OPT_INDENT_2))
    print(f"\nWrote {args.output}.")
    peak = max(CONCURRENCY)
    met = all(
        row.added_p50_ms < TARGET_ADDED_P50_MS and row.added_p99_ms < TARGET_ADDED_P99_MS
        for row in rows
        if row.concurrency == peak
    )
    print(
        f"Target at {peak} clients (added p50 < {TARGET_ADDED_P50_MS:g} ms and "
        f"p99 < {TARGET_ADDED_P99_MS:g} ms): {'met' if met else 'NOT met'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
