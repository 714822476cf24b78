"""What serving a prompt by name adds to a plain gateway call, at 1 and 16 concurrent clients.

Both paths go through the same hub to the same upstream with the same chat-completion request:
the plain path posts the rendered messages, the model and the parameters to
`/v1/chat/completions`; the prompt path posts only the variables to
`/v1/prompts/{name}/completions`, and the hub finds the production version, renders it and
sends the same request on. The upstream (tests' ScriptedUpstream answering after a fixed
delay), the hub (on a SQLite file) and this load generator each run in their own process, as
in bench/gateway_overhead.py, whose processes and load this reuses: clients spread over one
upstream delay, and plain and prompt calls alternate in slices so a drift in the machine's
load hits both.

"Added" is a difference of percentiles over the same number of calls on each path: the prompt
path's p50 minus the plain path's p50 (and p99 minus p99). It is not a percentile of
per-call differences, which do not exist (the calls are not paired); the p50 is the figure
that the target (under 0.5 ms) is about, the p99 is the noisier one.

    .venv/bin/python bench/prompt_serving.py [--quick] [--delay-ms 50]

Writes bench/results/prompt_serving.json: `rows` of concurrency, plain_p50_ms, prompt_p50_ms,
added_p50_ms and added_p99_ms, with what was measured and how at the top level.
"""

import os
import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import orjson

from bench.gateway_overhead import (
    MODEL,
    REPO_ROOT,
    TOKEN,
    BenchError,
    Samples,
    Target,
    _load,
    _run,
    bench_arguments,
    upstream_and_hub,
)
from tests.support.prompts import rendered

__all__ = ["Row", "main", "run_benchmark"]

RESULTS = REPO_ROOT / "bench" / "results" / "prompt_serving.json"
PROMPT = "bench-release-notes"
MESSAGES = [
    {"role": "system", "content": "You write short release notes for {{product}}."},
    {"role": "user", "content": "Changes: {{changes}}. Audience: {{audience}}."},
]
PARAMETERS = {"temperature": 0.2, "max_tokens": 64}
VARIABLES = {"product": "Atlas", "changes": "faster search", "audience": "admins"}
CONCURRENCY = (1, 16)
# Measured requests per cell (per path); a cell at 1 client is bounded by the delay.
REQUESTS = {1: 400, 16: 3200}
QUICK_REQUESTS = {1: 60, 16: 480}
# More, shorter slices than the gateway benchmark's: the difference measured is smaller.
SLICES = 8
TARGET_ADDED_P50_MS = 0.5


@dataclass(frozen=True, slots=True)
class Row:
    concurrency: int
    plain_p50_ms: float
    prompt_p50_ms: float
    added_p50_ms: float
    added_p99_ms: float


@dataclass(frozen=True, slots=True)
class FixedTarget(Target):
    """A target that sends the same body on every call."""

    payload: bytes = b""

    def body(self, stream: bool) -> bytes:
        return self.payload


async def _make_prompt(session: aiohttp.ClientSession, hub_url: str, auth: dict[str, str]) -> None:
    body = {"name": PROMPT, "messages": MESSAGES, "model": MODEL, "parameters": PARAMETERS}
    async with session.post(hub_url + "/api/prompts", json=body, headers=auth) as response:
        if response.status != 201:
            raise BenchError(
                f"making the prompt answered {response.status}: {await response.text()}"
            )


async def run_benchmark(hub_url: str, requests: dict[int, int], delay_s: float) -> list[Row]:
    auth = {"authorization": f"Bearer {TOKEN}"}
    plain_body = {
        "model": MODEL,
        "messages": rendered(MESSAGES, **VARIABLES),
        **PARAMETERS,
        "stream": False,
    }
    plain = FixedTarget(
        hub_url + "/v1/chat/completions", MODEL, auth, payload=orjson.dumps(plain_body)
    )
    prompt = FixedTarget(
        hub_url + f"/v1/prompts/{PROMPT}/completions",
        MODEL,
        auth,
        payload=orjson.dumps({"variables": VARIABLES}),
    )
    rows: list[Row] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await _make_prompt(session, hub_url, auth)
        for concurrency in CONCURRENCY:
            options = {"stream": False, "concurrency": concurrency, "spread_s": delay_s}
            for target in (plain, prompt):
                # Warm-up: open the connections, let the hub resolve the token.
                warm = max(20, 4 * concurrency)
                await _load(session, target, **options, requests=warm, into=Samples())
            plain_samples, prompt_samples = Samples(), Samples()
            count = requests[concurrency] // SLICES
            for _ in range(SLICES):
                for target, into in ((plain, plain_samples), (prompt, prompt_samples)):
                    await _load(session, target, **options, requests=count, into=into)
            row = _row(concurrency, plain_samples, prompt_samples)
            print(_format_row(row, plain_samples, prompt_samples), flush=True)
            rows.append(row)
    return rows


def _row(concurrency: int, plain: Samples, prompt: Samples) -> Row:
    return Row(
        concurrency=concurrency,
        plain_p50_ms=round(plain.percentile_ms(50), 3),
        prompt_p50_ms=round(prompt.percentile_ms(50), 3),
        added_p50_ms=round(prompt.percentile_ms(50) - plain.percentile_ms(50), 3),
        added_p99_ms=round(prompt.percentile_ms(99) - plain.percentile_ms(99), 3),
    )


_HEADER = (
    f"{'clients':>7} {'plain p50':>9} {'prompt p50':>10} {'added p50':>9} "
    f"{'plain p99':>9} {'prompt p99':>10} {'added p99':>9}"
)


def _format_row(row: Row, plain: Samples, prompt: Samples) -> str:
    return (
        f"{row.concurrency:>7} {row.plain_p50_ms:>9.2f} {row.prompt_p50_ms:>10.2f} "
        f"{row.added_p50_ms:>9.2f} {plain.percentile_ms(99):>9.2f} "
        f"{prompt.percentile_ms(99):>10.2f} {row.added_p99_ms:>9.2f}"
    )


def main() -> int:
    args = bench_arguments(__doc__, RESULTS)
    requests = QUICK_REQUESTS if args.quick else REQUESTS
    print(
        f"Upstream delay {args.delay_ms:g} ms; requests per path and cell: "
        f"{', '.join(f'{n} at {c} clients' for c, n in requests.items())}, in {SLICES} "
        f"alternating slices; {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        flush=True,
    )
    print("Latencies in ms; added = prompt minus plain.\n" + _HEADER, flush=True)
    load_before = os.getloadavg()
    with upstream_and_hub(args.delay_ms) as (_, hub_url):
        rows = _run(run_benchmark(hub_url, requests, args.delay_ms / 1000))
    met = all(row.added_p50_ms < TARGET_ADDED_P50_MS for row in rows)
    result: dict[str, Any] = {
        "added": "prompt path's percentile minus the plain path's, over the same number of calls",
        "upstream_delay_ms": args.delay_ms,
        "requests_per_path": {str(c): n for c, n in requests.items()},
        "slices": SLICES,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": [round(load, 2) for load in load_before],
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        "target_met": met,
        "rows": [asdict(row) for row in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"\nWrote {args.output}.")
    print(
        f"Target (added p50 < {TARGET_ADDED_P50_MS:g} ms at every concurrency): "
        f"{'met' if met else 'NOT met'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
