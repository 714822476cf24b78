"""How long a search of one's conversations takes: 2,000 generated conversations (20,000
messages, plus the analyst's query steps) of four people, in the chat's tables with the index
of migration 0021, searched a few hundred times through app/search.py as the search page does
(one person, a page of 20, best first).

The searches mix one common word, two words, a word with the start of another, a rare word,
and each with a filter (model, agent, MCP server, date range). Runs on a SQLite file, and on
PostgreSQL: a scratch database made on the server at --postgres (default: this machine's
127.0.0.1:5432, skipped when it does not answer; `--postgres ''` skips it), analysed after
the load as autovacuum would.

    .venv/bin/python -m bench.chat_search [--quick] [--postgres postgresql://user@host/db]

Writes bench/results/chat_search.json.
"""

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.data_layer import async_database_url
from app.search import SearchQuery, search_conversations
from hub.core.db import dispose_engines, get_engine, migrate
from tests.support.conversations import ANALYST, MODELS, PEOPLE, SERVER, generate, store

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "chat_search.json"
CONVERSATIONS = 2000
SEARCHES, QUICK_SEARCHES = 400, 100
WARMUP = 20
PAGE = 20
TARGET_P50_MS = 50.0
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_WORDS = ["revenue", "tango", "forecast", "ledger", "quartz", "amber", "sales", "zulu"]


def queries(count: int, seed: int = 7) -> list[tuple[str, SearchQuery]]:
    rng = random.Random(seed)
    made = []
    for number in range(count):
        shape = number % 4
        words = [rng.choice(_WORDS)]
        if shape == 1:
            words.append(rng.choice(_WORDS))
        elif shape == 2:
            words.append(rng.choice(_WORDS)[:3])
        day = date(2026, 1, 1) + timedelta(days=rng.randrange(80))
        filters: list[dict[str, Any]] = [
            {},
            {"model": rng.choice(MODELS)},
            {"agent": ANALYST},
            {"server": SERVER},
            {"since": day, "until": day + timedelta(days=7)},
        ]
        made.append((rng.choice(PEOPLE), SearchQuery(words, **rng.choice(filters))))
    return made


async def _time_searches(url: str, searches: list[tuple[str, SearchQuery]]) -> dict[str, Any]:
    engine = create_async_engine(async_database_url(url)[0])
    try:
        for owner, query in searches[:WARMUP]:
            await search_conversations(engine, owner, query, limit=PAGE, offset=0)
        timings, found = [], 0
        for owner, query in searches:
            began = time.perf_counter()
            hits = await search_conversations(engine, owner, query, limit=PAGE, offset=0)
            timings.append((time.perf_counter() - began) * 1000)
            found += len(hits)
    finally:
        await engine.dispose()
    cuts = statistics.quantiles(timings, n=100)
    return {
        "searches": len(timings),
        "p50_ms": round(statistics.median(timings), 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(timings), 3),
        "mean_hits": round(found / len(timings), 2),
    }


def run_on(url: str, searches: list[tuple[str, SearchQuery]]) -> dict[str, Any]:
    migrate(url)
    conversations = generate(CONVERSATIONS)
    began = time.perf_counter()
    store(get_engine(url), conversations)
    stored_s = time.perf_counter() - began
    if url.startswith("postgresql"):
        # What autovacuum does within a minute of a bulk load: without statistics the planner
        # takes the filters for free and scans.
        with get_engine(url).connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    figures = asyncio.run(_time_searches(url, searches))
    return {
        "conversations": len(conversations),
        "messages": sum(len(c.messages) for c in conversations),
        "store_s": round(stored_s, 2),
        **figures,
    }


@contextmanager
def scratch_postgres(server_url: str) -> Iterator[str]:
    """A fresh database on the server of `server_url`, dropped afterwards."""
    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    finally:
        dispose_engines()
        with psycopg.connect(admin.render_as_string(False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SEARCHES} searches")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL server")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    searches = queries(QUICK_SEARCHES if args.quick else SEARCHES)
    print(
        f"{len(searches)} searches over {CONVERSATIONS} conversations; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        flush=True,
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        try:
            results["sqlite"] = run_on(f"sqlite:///{Path(tmp) / 'chat.db'}", searches)
        finally:
            dispose_engines()
    if args.postgres:
        try:
            with scratch_postgres(args.postgres) as url:
                results["postgresql"] = run_on(url, searches)
        except psycopg.OperationalError as error:
            print(f"PostgreSQL skipped: {error}", file=sys.stderr)
    print(f"\n{'database':>10} {'p50 ms':>8} {'p99 ms':>8} {'mean hits':>10}")
    for database, figures in results.items():
        print(
            f"{database:>10} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} "
            f"{figures['mean_hits']:>10.1f}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"Wrote {args.output}.")
    met = all(figures["p50_ms"] < TARGET_P50_MS for figures in results.values())
    print(f"Target (p50 < {TARGET_P50_MS:g} ms): {'met' if met else 'NOT met'}.")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
