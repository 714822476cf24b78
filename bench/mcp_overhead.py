"""What the hub adds to an MCP tool call: the same tool of the same server called straight
and through the hub's call endpoint.

The direct calls use the same client the hub uses for its own calls to the server
(`hub.mcp.http_session.HttpSession`: one JSON-RPC POST a call on a kept-alive connection),
the cheapest honest MCP client, so the difference is what the hub adds: its HTTP endpoint,
auth, the registry's checks and the per-tool statistics.

Once the clients keep both cores busy (16 and 64 on a two-core machine), the server's own work
queues for CPU, and every ms of CPU the hub spends on a call shows up there many times over:
the figures at those levels measure the hub's CPU cost per call more than its latency.

The MCP server (the shipped handbook server), the hub and this load generator each run in
their own process. Direct and hub calls alternate in slices, so a drift in the machine's load
hits both.

    .venv/bin/python -m bench.mcp_overhead [--quick]

Writes bench/results/mcp_overhead.json.
"""

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson

from bench.gateway_overhead import (
    REPO_ROOT,
    TOKEN,
    BenchError,
    Samples,
    _free_port,
    _run,
    _stop,
    start_hub,
)
from hub.mcp.client import Endpoint
from hub.mcp.http_session import HttpSession, guarded_http
from hub.mcp.netguard import NetworkPolicy
from hub.models.mcp_server import McpTransport

__all__ = ["Row", "main"]

RESULTS = REPO_ROOT / "bench" / "results" / "mcp_overhead.json"
TOOL = "search_handbook"
ARGUMENTS = {"query": "hotel nightly cap", "limit": 3}
CONCURRENCY = (1, 16, 64)
REQUESTS = {1: 1200, 16: 1600, 64: 3200}
QUICK_REQUESTS = {1: 80, 16: 320, 64: 640}
SLICES = 8
TARGET_ADDED_P50_MS = 2.0
STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Row:
    concurrency: int
    direct_p50_ms: float
    direct_p99_ms: float
    hub_p50_ms: float
    hub_p99_ms: float
    added_p50_ms: float
    added_p99_ms: float


@contextmanager
def start_handbook() -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "mcp_servers.handbook", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(f"the handbook server exited with code {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the handbook server did not listen in time") from None
                time.sleep(0.05)
        yield url
    finally:
        _stop(process)


async def _register(http: aiohttp.ClientSession, hub_url: str, server_url: str) -> str:
    body = {
        "slug": "handbook",
        "name": "Company handbook",
        "description": "Benchmark copy of the handbook server.",
        "team": "platform",
        "url": server_url,
    }
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with http.post(f"{hub_url}/api/mcp/servers", json=body, headers=headers) as response:
        if response.status != 201:
            raise BenchError(f"registering failed: {response.status} {await response.text()}")
    return f"{hub_url}/api/mcp/servers/handbook/tools/{TOOL}/call"


async def _load(
    call: Callable[[], Awaitable[None]], *, concurrency: int, requests: int, into: Samples
) -> None:
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            into.latencies_s.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    into.wall_s += time.perf_counter() - started


async def run_benchmark(server_url: str, hub_url: str, requests: dict[int, int]) -> list[Row]:
    rows: list[Row] = []
    body = orjson.dumps({"arguments": ARGUMENTS})
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    policy = NetworkPolicy.from_strings(["127.0.0.0/8"])
    # Connections to the hub idle while the direct calls run; letting them go after 4 s
    # (uvicorn closes them after 5) keeps a call from landing on one the hub is closing.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        guarded_http(policy, connect_timeout_s=5.0) as mcp_http,
    ):
        endpoint = Endpoint(url=server_url, transport=McpTransport.streamable_http)
        session = HttpSession(
            mcp_http, endpoint, policy=policy, connect_timeout_s=5.0, call_timeout_s=60.0
        )
        call_url = await _register(http, hub_url, server_url)

        async def direct() -> None:
            result = await session.call_tool(TOOL, ARGUMENTS)
            if result.get("isError"):
                raise BenchError(f"the direct call failed: {result.get('content')}")

        async def through_hub() -> None:
            async with http.post(call_url, data=body, headers=headers) as response:
                payload = await response.read()
                if response.status != 200 or b'"isError":false' not in payload:
                    raise BenchError(f"the hub call failed: {response.status} {payload[:300]!r}")

        for concurrency in CONCURRENCY:
            for call in (direct, through_hub):
                await _load(call, concurrency=concurrency, requests=4 * concurrency, into=Samples())
            direct_samples, hub_samples = Samples(), Samples()
            count = requests[concurrency] // SLICES
            for _ in range(SLICES):
                for call, into in ((direct, direct_samples), (through_hub, hub_samples)):
                    await _load(call, concurrency=concurrency, requests=count, into=into)
            row = _row(concurrency, direct_samples, hub_samples)
            print(_format_row(row), flush=True)
            rows.append(row)
        await session.close()
    return rows


def _row(concurrency: int, direct: Samples, hub: Samples) -> Row:
    d50, d99 = direct.percentile_ms(50), direct.percentile_ms(99)
    h50, h99 = hub.percentile_ms(50), hub.percentile_ms(99)
    return Row(
        concurrency=concurrency,
        direct_p50_ms=round(d50, 3),
        direct_p99_ms=round(d99, 3),
        hub_p50_ms=round(h50, 3),
        hub_p99_ms=round(h99, 3),
        added_p50_ms=round(h50 - d50, 3),
        added_p99_ms=round(h99 - d99, 3),
    )


_HEADER = (
    f"{'clients':>7} {'direct p50':>10} {'direct p99':>10} {'hub p50':>8} {'hub p99':>8} "
    f"{'added p50':>9} {'added p99':>9}"
)


def _format_row(row: Row) -> str:
    return (
        f"{row.concurrency:>7} {row.direct_p50_ms:>10.2f} {row.direct_p99_ms:>10.2f} "
        f"{row.hub_p50_ms:>8.2f} {row.hub_p99_ms:>8.2f} {row.added_p50_ms:>9.2f} "
        f"{row.added_p99_ms:>9.2f}"
    )


def _load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: how quiet it was."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the rows")
    args = parser.parse_args()
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    print(
        f"Tool {TOOL}{ARGUMENTS} of the handbook server; requests per path and cell: "
        f"{', '.join(f'{n} at {c} clients' for c, n in requests.items())}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}.",
        flush=True,
    )
    print(f"Load average before: {_load_average()}.\nLatencies in ms.\n" + _HEADER, flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp,
        start_handbook() as server_url,
        start_hub("http://127.0.0.1:9/v1", Path(tmp)) as hub_url,
    ):
        rows = _run(run_benchmark(server_url, hub_url, requests))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps([asdict(row) for row in rows], option=orjson.OPT_INDENT_2))
    print(f"\nLoad average after: {_load_average()}. Wrote {args.output}.")
    met = all(row.added_p50_ms < TARGET_ADDED_P50_MS for row in rows)
    print(f"Target (added p50 < {TARGET_ADDED_P50_MS:g} ms): {'met' if met else 'NOT met'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
