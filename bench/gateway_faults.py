"""The gateway under provider faults: 64 clients against a model whose only deployment fails
30% of its requests (503) with a healthy fallback model, and against one whose deployment is
down with its circuit breaker open; beside the same load on a healthy model.

Upstreams (tests' ScriptedUpstream answering after a fixed delay), the hub and this load
generator each run in their own process. The hub runs with its default retry and breaker
settings, except a breaker cool-down of 5 s, so the flaky model's breaker opens, probes and
closes again several times during a run.

    .venv/bin/python -m bench.gateway_faults [--quick] [--delay-ms 50]

Writes bench/results/gateway_faults.json: rows of scenario, requests, succeeded, p50_ms, p99_ms.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson

from bench.gateway_overhead import (
    Samples,
    _free_port,
    _run,
    serve_hub,
    start_upstream,
)

__all__ = ["Row", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "gateway_faults.json"
TOKEN = "sb-bench-faults-token"
CLIENTS = 64
REQUESTS = 6400
QUICK_REQUESTS = 1280
# Models: each scenario's model, and the fallback they share.
SCENARIOS = {
    "healthy": "healthy",
    "primary_fails_30pct": "flaky",
    "primary_down_breaker_open": "down",
}
TARGET_P99_MARGIN_MS = 5.0
SLICES = 8
# What the requests that failed got, to print.
FAILURES: Counter[str] = Counter()


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    requests: int
    succeeded: int
    p50_ms: float
    p99_ms: float


@contextmanager
def _hub(workdir: Path, healthy: str, flaky: str, spare: str) -> Iterator[str]:
    down = f"http://127.0.0.1:{_free_port()}/v1"

    def model(name: str, url: str, fallbacks: list[str]) -> dict[str, object]:
        deployment = {"provider": "openai-compatible", "base_url": url, "model": name}
        return {"name": name, "deployments": [deployment], "fallbacks": fallbacks}

    models = [
        model("healthy", healthy, []),
        model("flaky", flaky, ["spare"]),
        model("down", down, ["spare"]),
        model("spare", spare, []),
    ]
    cooldown = {"SWITCHBOARD_BREAKER_COOLDOWN_S": "5"}
    with serve_hub(workdir, models, token=TOKEN, log_level="error", settings=cooldown) as url:
        yield url


async def _load(
    session: aiohttp.ClientSession, hub: str, model: str, requests: int, into: Samples
) -> int:
    """`requests` calls of `model` from CLIENTS clients; returns how many got a 200."""
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    url = hub + "/v1/chat/completions"
    succeeded = 0
    remaining = requests

    async def client() -> None:
        nonlocal remaining, succeeded
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status == 200:
                    succeeded += 1
                else:
                    FAILURES[f"{model} {response.status} {answer[:300].decode()}"] += 1
            into.latencies_s.append(time.perf_counter() - started)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return succeeded


async def run_benchmark(hub: str, requests: int) -> list[Row]:
    samples = {scenario: Samples() for scenario in SCENARIOS}
    succeeded = dict.fromkeys(SCENARIOS, 0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for model in SCENARIOS.values():
            # Warm-up: connections, the token cache; for "down", the failures that open the
            # breaker.
            await _load(session, hub, model, 4 * CLIENTS, Samples())
        # Scenarios alternate in slices, so a drift in the machine's load hits them all.
        for _ in range(SLICES):
            for scenario, model in SCENARIOS.items():
                count = requests // SLICES
                succeeded[scenario] += await _load(session, hub, model, count, samples[scenario])
    rows = []
    for scenario, into in samples.items():
        row = Row(
            scenario=scenario,
            requests=len(into.latencies_s),
            succeeded=succeeded[scenario],
            p50_ms=round(into.percentile_ms(50), 3),
            p99_ms=round(into.percentile_ms(99), 3),
        )
        print(
            f"{scenario:<28} {row.requests:>8} {row.succeeded:>9} "
            f"{100 * row.succeeded / row.requests:>8.2f}% {row.p50_ms:>8.2f} {row.p99_ms:>8.2f}",
            flush=True,
        )
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per scenario")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="the upstreams' delay")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the rows")
    args = parser.parse_args()
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    print(
        f"{CLIENTS} clients, {requests} requests per scenario, upstream delay "
        f"{args.delay_ms:g} ms; {os.cpu_count()} CPUs, Python {platform.python_version()}.\n"
        f"{'scenario':<28} {'requests':>8} {'succeeded':>9} {'rate':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8}",
        flush=True,
    )
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-")))
        healthy = stack.enter_context(start_upstream(args.delay_ms))
        flaky = stack.enter_context(start_upstream(args.delay_ms, "--fail-ratio", "0.3"))
        spare = stack.enter_context(start_upstream(args.delay_ms))
        hub = stack.enter_context(_hub(workdir, healthy, flaky, spare))
        rows = _run(run_benchmark(hub, requests))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps([asdict(row) for row in rows], option=orjson.OPT_INDENT_2))
    for failure, count in FAILURES.most_common(5):
        print(f"{count} failed: {failure}")
    print(f"\nWrote {args.output}.")
    by = {row.scenario: row for row in rows}
    all_answered = all(row.succeeded == row.requests for row in rows)
    margin = by["primary_down_breaker_open"].p99_ms - by["healthy"].p99_ms
    print(
        f"Targets: every request answered: {'met' if all_answered else 'NOT met'}; "
        f"p99 with the breaker open within {TARGET_P99_MARGIN_MS:g} ms of healthy "
        f"({margin:+.2f} ms): {'met' if margin <= TARGET_P99_MARGIN_MS else 'NOT met'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
