"""The hub's gateway beside LiteLLM's proxy and Portkey's gateway: what each adds to a chat
completion over a direct call to the same upstream, and the CPU time each spends per call, at
1, 16 and 64 concurrent clients, streaming and not.

The scripted upstream, the hub, LiteLLM's proxy (one worker), Portkey's gateway (node), a
floor and this load generator each run in their own process, as in bench/gateway_overhead.py,
whose load this reuses: clients spread over one upstream delay, a stream timed to its end. The
floor is bench/bare_proxy.py, a forwarder on the hub's own server stack that only passes the
request and the answer through: what it adds is what any Python gateway on that stack adds on
this machine before doing any work. The five paths (direct, hub, LiteLLM, Portkey, floor) take
turns in slices within one run, so a drift in the machine's load hits them all; every path
sends the same request to the same upstream, and each answer's text is checked once per cell
(and every call's status and stream end always), so a gateway that fails is not measured as
fast: one whose answer is wrong is left out of the cell and reported as failed, with what it
answered.

"Added" is a difference of percentiles over the same number of calls: a gateway's p50 minus
the direct path's p50 (and p99 minus p99). CPU per call is the user and system time of the
gateway's process and its children over its slices, divided by the calls in them.

The peers are installed on the first run into folders of their own (see bench/peer_gateways.py,
`--peers-folder`); that needs the package registries and node.

    .venv/bin/python -m bench.gateway_peers [--quick] [--delay-ms 50] [--peers-folder DIR]

Writes bench/results/gateway_peers.json.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.gateway_overhead import (
    MODEL,
    REPLY,
    REPO_ROOT,
    TOKEN,
    UPSTREAM_MODEL,
    BenchError,
    Samples,
    Target,
    _free_port,
    _load,
    _run,
    hub_catalog,
    hub_process,
    run_server,
    start_upstream,
)
from bench.peer_gateways import (
    DEFAULT_FOLDER,
    LITELLM_KEY,
    LITELLM_VERSION,
    PORTKEY_VERSION,
    install_litellm,
    install_portkey,
    start_litellm,
    start_portkey,
)

__all__ = ["Gateway", "Row", "main", "process_tree_cpu_s", "reply_text", "run_benchmark"]

RESULTS = REPO_ROOT / "bench" / "results" / "gateway_peers.json"
CONCURRENCY = (1, 16, 64)
# Measured requests per cell and path; a cell at 1 client is bounded by the delay, the others
# by the slowest gateway's throughput.
REQUESTS = {1: 400, 16: 1600, 64: 3200}
QUICK_REQUESTS = {1: 40, 16: 320, 64: 640}
SLICES = 4
IDLE_CONNECTION_S = 3.0


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    target: Target
    pid: int


@dataclass(frozen=True, slots=True)
class Figures:
    p50_ms: float
    p99_ms: float
    added_p50_ms: float
    added_p99_ms: float
    cpu_ms_per_call: float
    rps: float


@dataclass(frozen=True, slots=True)
class Row:
    stream: bool
    concurrency: int
    direct_p50_ms: float
    direct_p99_ms: float
    gateways: dict[str, Figures]
    # Gateways left out of the cell because their answer was wrong, with what they answered.
    failed: dict[str, str]


def process_tree_cpu_s(pid: int, proc: Path = Path("/proc")) -> float:
    """User and system CPU seconds of process `pid` and its descendants (with the children
    they have waited for), read from `proc`."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        # After the command's closing parenthesis: state, ppid, ... utime, stime, cutime, cstime
        # (fields 3, 4, ... 14 to 17 of proc(5)).
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = sum(int(value) for value in fields[11:15])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(ticks.get(member, 0) for member in tree) / os.sysconf("SC_CLK_TCK")


def reply_text(body: bytes, stream: bool) -> str:
    """The assistant's text in a chat-completion answer, or in a stream's chunks."""
    if not stream:
        return str(orjson.loads(body)["choices"][0]["message"]["content"])
    pieces: list[str] = []
    for line in body.splitlines():
        data = line.removeprefix(b"data:").strip()
        if not line.startswith(b"data:") or data == b"[DONE]":
            continue
        for choice in orjson.loads(data).get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces)


async def _check_reply(
    session: aiohttp.ClientSession, name: str, target: Target, stream: bool
) -> None:
    headers = {"content-type": "application/json", **target.headers}
    async with session.post(target.url, data=target.body(stream), headers=headers) as response:
        body = await response.read()
    if response.status != 200:
        raise BenchError(f"{name} answered {response.status}: {body[:500]!r}")
    text = reply_text(body, stream)
    if text != REPLY:
        raise BenchError(f"{name} answered {text[:200]!r} instead of the upstream's reply")


async def run_benchmark(
    direct: Target, gateways: list[Gateway], requests: dict[int, int], delay_s: float
) -> list[Row]:
    rows: list[Row] = []
    # A path's connections wait while the others take their slices, longer than the servers
    # keep an idle connection (5 s for uvicorn and node): ones idle for more than 3 s are not
    # reused, rather than written to as the server closes them.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_S)
    async with aiohttp.ClientSession(connector=connector) as session:
        for stream in (False, True):
            for concurrency in CONCURRENCY:
                cell = _Cell(session, stream, concurrency, delay_s)
                row = await cell.measure(direct, gateways, requests[concurrency] // SLICES)
                print(_format_row(row), flush=True)
                rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class _Cell:
    session: aiohttp.ClientSession
    stream: bool
    concurrency: int
    spread_s: float

    async def measure(self, direct: Target, gateways: list[Gateway], per_slice: int) -> Row:
        await _check_reply(self.session, "direct", direct, self.stream)
        failed: dict[str, str] = {}
        for gateway in gateways:
            try:
                await _check_reply(self.session, gateway.name, gateway.target, self.stream)
            except BenchError as error:
                failed[gateway.name] = str(error)
        gateways = [gateway for gateway in gateways if gateway.name not in failed]
        paths = [("direct", direct), *((gateway.name, gateway.target) for gateway in gateways)]
        for _, target in paths:
            # Warm-up: open the connections, fill caches, resolve the keys.
            await self.load(target, max(20, 4 * self.concurrency), Samples())
        samples = {name: Samples() for name, _ in paths}
        cpu_s = {gateway.name: 0.0 for gateway in gateways}
        for _ in range(SLICES):
            await self.load(direct, per_slice, samples["direct"])
            for gateway in gateways:
                before = process_tree_cpu_s(gateway.pid)
                await self.load(gateway.target, per_slice, samples[gateway.name])
                cpu_s[gateway.name] += process_tree_cpu_s(gateway.pid) - before
        return _row(self.stream, self.concurrency, samples, cpu_s, failed)

    async def load(self, target: Target, requests: int, into: Samples) -> None:
        await _load(
            self.session,
            target,
            stream=self.stream,
            concurrency=self.concurrency,
            requests=requests,
            spread_s=self.spread_s,
            into=into,
        )


def _row(
    stream: bool,
    concurrency: int,
    samples: dict[str, Samples],
    cpu_s: dict[str, float],
    failed: dict[str, str],
) -> Row:
    direct = samples["direct"]
    d50, d99 = direct.percentile_ms(50), direct.percentile_ms(99)
    gateways: dict[str, Figures] = {}
    for name, used_s in cpu_s.items():
        own = samples[name]
        g50, g99 = own.percentile_ms(50), own.percentile_ms(99)
        gateways[name] = Figures(
            p50_ms=round(g50, 3),
            p99_ms=round(g99, 3),
            added_p50_ms=round(g50 - d50, 3),
            added_p99_ms=round(g99 - d99, 3),
            cpu_ms_per_call=round(used_s * 1000 / len(own.latencies_s), 3),
            rps=round(len(own.latencies_s) / own.wall_s, 1),
        )
    return Row(stream, concurrency, round(d50, 3), round(d99, 3), gateways, failed)


_HEADER = (
    f"{'stream':>6} {'clients':>7} {'direct p50':>10} {'gateway':>8} {'added p50':>9} "
    f"{'added p99':>9} {'CPU/call':>8} {'req/s':>6}"
)


def _format_row(row: Row) -> str:
    cells = [
        f"{name:>8} {figures.added_p50_ms:>9.2f} {figures.added_p99_ms:>9.2f} "
        f"{figures.cpu_ms_per_call:>8.2f} {figures.rps:>6.0f}"
        for name, figures in row.gateways.items()
    ] + [f"{name:>8} failed: {answer[:120]}" for name, answer in row.failed.items()]
    head = f"{'yes' if row.stream else 'no':>6} {row.concurrency:>7} {row.direct_p50_ms:>10.2f}"
    return "\n".join(
        f"{head if index == 0 else ' ' * len(head)} {cell}" for index, cell in enumerate(cells)
    )


@contextmanager
def _all_running(delay_ms: float, peers_folder: Path) -> Iterator[tuple[Target, list[Gateway]]]:
    """The upstream and the three gateways in front of it; yield the direct target and the
    gateways."""
    litellm_folder = install_litellm(peers_folder)
    portkey_folder = install_portkey(peers_folder)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-")))
        upstream_url = stack.enter_context(start_upstream(delay_ms))
        hub_url, hub = stack.enter_context(hub_process(workdir, hub_catalog(upstream_url)))
        litellm_url, litellm = stack.enter_context(
            start_litellm(
                litellm_folder,
                workdir,
                model=MODEL,
                upstream_url=upstream_url,
                upstream_model=UPSTREAM_MODEL,
            )
        )
        portkey_url, portkey = stack.enter_context(start_portkey(portkey_folder, workdir))
        floor_url, floor = stack.enter_context(_bare_proxy(upstream_url))
        portkey_headers = {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream_url,
            "authorization": "Bearer unused",
        }
        yield (
            Target(upstream_url + "/chat/completions", UPSTREAM_MODEL, {}),
            [
                Gateway(
                    "hub",
                    Target(hub_url + "/v1/chat/completions", MODEL, _bearer(TOKEN)),
                    hub.pid,
                ),
                Gateway(
                    "litellm",
                    Target(litellm_url + "/v1/chat/completions", MODEL, _bearer(LITELLM_KEY)),
                    litellm.pid,
                ),
                Gateway(
                    "portkey",
                    Target(portkey_url + "/v1/chat/completions", UPSTREAM_MODEL, portkey_headers),
                    portkey.pid,
                ),
                Gateway(
                    "floor",
                    Target(floor_url + "/v1/chat/completions", UPSTREAM_MODEL, {}),
                    floor.pid,
                ),
            ],
        )


@contextmanager
def _bare_proxy(upstream_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """bench/bare_proxy.py in front of the upstream; yield its base URL and its process."""
    port = _free_port()
    command = [
        *(sys.executable, "-m", "uvicorn", "bench.bare_proxy:app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        "--no-access-log",
    ]
    env = {**os.environ, "BARE_PROXY_UPSTREAM": upstream_url}
    url = f"http://127.0.0.1:{port}"
    with run_server(command, health_url=url + "/", cwd=REPO_ROOT, env=env) as process:
        yield url, process


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="the upstream's delay")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the rows")
    parser.add_argument(
        "--peers-folder",
        type=Path,
        default=DEFAULT_FOLDER,
        help="where LiteLLM and Portkey are installed (once) and found",
    )
    return parser.parse_args()


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    args = _arguments()
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    load_before = os.getloadavg()
    with _all_running(args.delay_ms, args.peers_folder) as (direct, gateways):
        print(
            f"\nUpstream delay {args.delay_ms:g} ms; a reply of {len(REPLY.split())} tokens "
            "(a stream is timed to its end); requests per path and cell: "
            f"{', '.join(f'{n} at {c} clients' for c, n in requests.items())}, in {SLICES} "
            f"alternating slices; {os.cpu_count()} CPUs, Python {platform.python_version()}.",
            flush=True,
        )
        print("Latencies in ms over the direct call; CPU in ms per call.\n" + _HEADER, flush=True)
        rows = _run(run_benchmark(direct, gateways, requests, args.delay_ms / 1000))
    result: dict[str, Any] = {
        "added": "a gateway's percentile minus the direct path's, over the same number of calls",
        "cpu_ms_per_call": "user and system CPU of the gateway's process tree over its slices",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "upstream_delay_ms": args.delay_ms,
        "reply_tokens": len(REPLY.split()),
        "requests_per_path": {str(c): n for c, n in requests.items()},
        "slices": SLICES,
        "versions": {
            "python": platform.python_version(),
            "litellm": LITELLM_VERSION,
            "portkey_gateway": PORTKEY_VERSION,
            "node": _node_version(),
        },
        "cpus": os.cpu_count(),
        "load_average_before": [round(load, 2) for load in load_before],
        "rows": [asdict(row) for row in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"\nWrote {args.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
