"""Gateway throughput and added latency with one and with two hub replicas behind the proxy
(nginx with the configuration `switchboard run --replicas N` writes), and what the proxy
itself adds.

Four paths to the same scripted upstream, taken in turn in slices so a drift in the machine's
load hits each: the upstream directly, one hub replica directly, that replica through the
proxy, and two replicas through the proxy. Latencies are compared with the direct call; the
proxy's own cost is "one replica through the proxy" less "one replica directly". Each replica
is a process of its own on a SQLite file of its own: a gateway call touches the database only
through its batch writer, and the figures are of the processes and the proxy.

On this 2-core machine the replicas, the proxy, the upstream and the load generator share two
cores, so a second replica adds processes rather than cores: the figures show the proxy's
cost and the balancing, not the gain of a second machine.

    .venv/bin/python bench/replicas.py [--quick] [--delay-ms 50]

Writes bench/results/replicas.json. Needs nginx (`make nginx`).
"""

import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson

from bench.gateway_overhead import (
    MODEL,
    REPO_ROOT,
    SLICES,
    TOKEN,
    UPSTREAM_MODEL,
    BenchError,
    Samples,
    Target,
    _free_port,
    _load,
    _run,
    _stop,
    _wait_until_up,
    bench_arguments,
    start_hub,
    start_upstream,
)
from hub.replicas import NGINX, proxy_config

__all__ = ["Row", "main"]

RESULTS = REPO_ROOT / "bench" / "results" / "replicas.json"
CONCURRENCY = (16, 64)
REQUESTS = {16: 3200, 64: 6400}
QUICK_REQUESTS = {16: 320, 64: 640}
PATHS = ("direct", "one replica", "one replica via proxy", "two replicas via proxy")


@dataclass(frozen=True, slots=True)
class Row:
    stream: bool
    concurrency: int
    path: str
    p50_ms: float
    p99_ms: float
    added_p50_ms: float
    added_p99_ms: float
    rps: float


@contextmanager
def start_proxy(hubs: list[str], workdir: Path) -> Iterator[str]:
    """nginx in front of the hub replicas at `hubs` (host:port); yield its hub address."""
    if not Path(NGINX).exists():
        raise BenchError(f"nginx is not at {NGINX}: run `make nginx`")
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "nginx.conf"
    config.write_text(
        proxy_config(
            hubs=hubs,
            # The chat's side is not measured, but nginx needs a server in each upstream.
            chats=hubs[:1],
            hub_listen=f"127.0.0.1:{port}",
            chat_listen=f"127.0.0.1:{_free_port()}",
            state_dir=str(workdir),
        )
    )
    command = [NGINX, "-e", "stderr", "-p", str(workdir), "-c", str(config)]
    process = subprocess.Popen([*command, "-g", "daemon off;"], cwd=workdir)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


async def run_benchmark(
    targets: dict[str, Target], requests: dict[int, int], delay_s: float
) -> list[Row]:
    rows: list[Row] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for stream in (False, True):
            for concurrency in CONCURRENCY:
                options = {"stream": stream, "concurrency": concurrency, "spread_s": delay_s}
                for target in targets.values():
                    warm = max(20, 4 * concurrency)
                    await _load(session, target, **options, requests=warm, into=Samples())
                samples = {path: Samples() for path in targets}
                count = requests[concurrency] // SLICES
                for _ in range(SLICES):
                    for path, target in targets.items():
                        await _load(session, target, **options, requests=count, into=samples[path])
                direct = samples["direct"]
                for path, taken in samples.items():
                    row = _row(stream, concurrency, path, direct, taken)
                    print(_format_row(row), flush=True)
                    rows.append(row)
    return rows


def _row(stream: bool, concurrency: int, path: str, direct: Samples, taken: Samples) -> Row:
    p50, p99 = taken.percentile_ms(50), taken.percentile_ms(99)
    return Row(
        stream=stream,
        concurrency=concurrency,
        path=path,
        p50_ms=round(p50, 3),
        p99_ms=round(p99, 3),
        added_p50_ms=round(p50 - direct.percentile_ms(50), 3),
        added_p99_ms=round(p99 - direct.percentile_ms(99), 3),
        rps=round(len(taken.latencies_s) / taken.wall_s, 1),
    )


_HEADER = (
    f"{'stream':>6} {'clients':>7} {'path':<24} {'p50':>7} {'p99':>7} "
    f"{'added p50':>9} {'added p99':>9} {'req/s':>7}"
)


def _format_row(row: Row) -> str:
    return (
        f"{'yes' if row.stream else 'no':>6} {row.concurrency:>7} {row.path:<24} "
        f"{row.p50_ms:>7.2f} {row.p99_ms:>7.2f} {row.added_p50_ms:>9.2f} "
        f"{row.added_p99_ms:>9.2f} {row.rps:>7.0f}"
    )


def main() -> int:
    args = bench_arguments(__doc__, RESULTS)
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    print(
        f"Upstream delay {args.delay_ms:g} ms; requests per path and cell: "
        f"{', '.join(f'{n} at {c} clients' for c, n in requests.items())}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}.",
        flush=True,
    )
    print("Latencies in ms; added: over the direct call.\n" + _HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        upstream_url = stack.enter_context(start_upstream(args.delay_ms))
        hubs = [
            stack.enter_context(start_hub(upstream_url, _folder(work / f"hub-{n}"))) for n in (1, 2)
        ]
        addresses = [url.removeprefix("http://") for url in hubs]
        one_proxied = stack.enter_context(start_proxy(addresses[:1], work / "proxy-1"))
        two_proxied = stack.enter_context(start_proxy(addresses, work / "proxy-2"))
        auth = {"authorization": f"Bearer {TOKEN}"}
        gateway_path = "/v1/chat/completions"
        targets = {
            "direct": Target(upstream_url + "/chat/completions", UPSTREAM_MODEL, {}),
            "one replica": Target(hubs[0] + gateway_path, MODEL, auth),
            "one replica via proxy": Target(one_proxied + gateway_path, MODEL, auth),
            "two replicas via proxy": Target(two_proxied + gateway_path, MODEL, auth),
        }
        assert tuple(targets) == PATHS
        rows = _run(run_benchmark(targets, requests, args.delay_ms / 1000))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps([asdict(row) for row in rows], option=orjson.OPT_INDENT_2))
    print(f"\nWrote {args.output}.")
    return 0


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
