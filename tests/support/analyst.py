"""The data analyst as `switchboard run` sets it up, for tests: the datamodel and BigQuery MCP
servers (real processes, on the test's emulator) registered in a running hub, and the
data-analyst agent published from its definition in agents/data_analyst/ by the platform's own
seeding code (hub/seed.py)."""

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import Session

from agents.checkpoint import open_checkpointer
from agents.hub_client import HubClient
from agents.runtime import AgentRunner, EventHandler, RunResult
from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.seed import BIGQUERY, DATAMODEL, publish_analyst, register_server
from hub.services.users import create_user
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.conftest import RunningHub
from tests.support.servers import served_module

__all__ = [
    "AMSTERDAM",
    "CATEGORY_POSTS_SQL",
    "DAILY_POSTS_SQL",
    "AnalystSetup",
    "analyst_runner",
    "ask_analyst",
    "expected_category_posts",
    "expected_daily_posts",
    "served_analyst",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

DAILY_POSTS_SQL = """SELECT DATE(created_at, "Europe/Amsterdam") AS day, COUNT(*) AS posts
FROM marketplace.posts
WHERE deleted_at IS NULL
  AND DATE(created_at, "Europe/Amsterdam")
      BETWEEN DATE_SUB(CURRENT_DATE("Europe/Amsterdam"), INTERVAL 7 DAY)
      AND DATE_SUB(CURRENT_DATE("Europe/Amsterdam"), INTERVAL 1 DAY)
GROUP BY day
ORDER BY day"""

CATEGORY_POSTS_SQL = """SELECT c.name AS category, COUNT(*) AS new_posts
FROM marketplace.posts AS p
JOIN marketplace.categories AS c ON c.category_id = p.category_id
WHERE p.deleted_at IS NULL
  AND DATE(p.created_at, "Europe/Amsterdam")
      BETWEEN DATE_SUB(CURRENT_DATE("Europe/Amsterdam"), INTERVAL 10 DAY)
      AND DATE_SUB(CURRENT_DATE("Europe/Amsterdam"), INTERVAL 1 DAY)
GROUP BY category
ORDER BY new_posts DESC, category"""


@dataclass(frozen=True)
class AnalystSetup:
    hub_url: str
    app_token: str

    def run_spec(self, user: str) -> dict[str, Any]:
        """The published agent as the chat app fetches it before a run."""
        response = httpx.get(
            f"{self.hub_url}/api/agents/data-analyst/live",
            headers={"Authorization": f"Bearer {self.app_token}", "X-Switchboard-User": user},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        spec: dict[str, Any] = response.json()
        return spec


@contextmanager
def served_analyst(
    hub: RunningHub, warehouse: EmulatorProcess, logs: Path, *, users: Sequence[str] = ()
) -> Iterator[AnalystSetup]:
    """The two servers registered in `hub` and the agent published, as `switchboard run`
    does (by its own code); `users` are created to ask it."""
    setup_token = hub.new_service("platform-setup", team="platform")
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for user in users:
            create_user(
                session=session, username=user, password="a long enough password", role=Role.builder
            )
    env = {
        "SWITCHBOARD_BIGQUERY_EMULATOR": warehouse.url,
        "SWITCHBOARD_BIGQUERY_PROJECT": warehouse.project,
        "SWITCHBOARD_BIGQUERY_DATASET": warehouse.dataset,
    }
    with ExitStack() as stack:
        for module, server in (
            ("mcp_servers.datamodel", DATAMODEL),
            ("mcp_servers.bigquery", BIGQUERY),
        ):
            log = logs / f"{server['slug']}.log"
            port = stack.enter_context(served_module(module, log, env=env))
            url = f"http://127.0.0.1:{port}/mcp"
            outcome = register_server(hub.url, setup_token, server, url)
            assert outcome == "registered", outcome
        outcome = publish_analyst(hub.settings)
        assert outcome == "published", outcome
        yield AnalystSetup(hub_url=hub.url, app_token=hub.app_token)


@asynccontextmanager
async def analyst_runner(hub: RunningHub) -> AsyncIterator[AgentRunner]:
    """A runner as the chat app holds one: a checkpointer on the hub's database and a tracer
    sending to the hub."""
    async with (
        HubClient(hub_url=hub.url, token=hub.app_token) as client,
        open_checkpointer(hub.settings.sqlalchemy_url) as checkpointer,
        Tracer(hub.url, hub.app_token, flush_interval_s=0.05) as tracer,
    ):
        yield AgentRunner(hub=client, checkpointer=checkpointer, tracer=tracer)


async def ask_analyst(
    runner: AgentRunner,
    spec: AgentSpec,
    question: str,
    *,
    approval: QueryApproval,
    approve: bool | None = None,
    on_event: EventHandler | None = None,
) -> list[RunResult]:
    """One turn from "ana" in her conversation; with `approve`, the approval question is
    answered so. Every result, in order."""
    turn: dict[str, Any] = {"spec": spec, "user": "ana", "conversation_id": "conv-analyst"}
    results = [await runner.run(message=question, on_event=on_event, approval=approval, **turn)]
    if approve is not None and results[0].status == "waiting":
        results.append(
            await runner.resume(approved=approve, on_event=on_event, approval=approval, **turn)
        )
    return results


def _posts(warehouse: EmulatorProcess) -> list[dict[str, Any]]:
    """Every post with its category name, read straight from the warehouse."""
    client = warehouse.client()
    try:
        rows = client.query(
            f"SELECT p.created_at, p.deleted_at, c.name AS category "
            f"FROM `{warehouse.dataset}.posts` AS p "
            f"JOIN `{warehouse.dataset}.categories` AS c ON c.category_id = p.category_id"
        ).result()
        return [dict(row.items()) for row in rows]
    finally:
        client.close()


def _local_day(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def _past_days(days: int) -> tuple[date, date]:
    """The last `days` full Amsterdam days, up to yesterday (the notes' "past N days")."""
    today = datetime.now(AMSTERDAM).date()
    return today - timedelta(days=days), today - timedelta(days=1)


def expected_daily_posts(warehouse: EmulatorProcess) -> dict[str, int]:
    """New, not deleted posts per Amsterdam day over the past week, counted in Python from
    the raw rows (not by the analyst's SQL)."""
    first, last = _past_days(7)
    counts: dict[str, int] = {}
    for post in _posts(warehouse):
        day = _local_day(post["created_at"])
        if post["deleted_at"] is None and first <= day <= last:
            counts[day.isoformat()] = counts.get(day.isoformat(), 0) + 1
    return dict(sorted(counts.items()))


def expected_category_posts(warehouse: EmulatorProcess) -> dict[str, int]:
    """New, not deleted posts per category over the past 10 days, counted in Python."""
    first, last = _past_days(10)
    counts: dict[str, int] = {}
    for post in _posts(warehouse):
        day = _local_day(post["created_at"])
        if post["deleted_at"] is None and first <= day <= last:
            counts[post["category"]] = counts.get(post["category"], 0) + 1
    return counts
