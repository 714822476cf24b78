"""The cost page: usage and cost by team, service, model and prompt version over time, as
charts, and a CSV export, for admins; on SQLite and on PostgreSQL."""

import csv
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import openai
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.owners import as_service
from tests.support.upstream import ScriptedUpstream


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    return database_url


@contextmanager
def _person(hub: RunningHub, name: str, admin: bool) -> Iterator[httpx.Client]:
    """A person signed in to the hub's pages."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session,
            username=name,
            password=f"pw-{name}",
            role=Role.admin if admin else Role.member,
        )
    with httpx.Client(base_url=hub.url, headers={"Origin": hub.url}, timeout=30) as client:
        response = client.post("/login", data={"username": name, "password": f"pw-{name}"})
        assert response.status_code == 303
        yield client


def test_an_admin_sees_cost_charts_by_team_service_and_model_and_exports_csv(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply="one two three four")
    calls = {("billing", "finance"): 3, ("search", "web"): 1}
    for (name, team), count in calls.items():
        client = openai.OpenAI(
            base_url=hub.url + "/v1", api_key=hub.new_service(name, team=team), max_retries=0
        )
        for _ in range(count):
            client.chat.completions.create(
                model="test-model", messages=[{"role": "user", "content": "what does it cost"}]
            )

    with _person(hub, "ada", admin=True) as ada:
        by_team = ada.get("/costs", params={"by": "team", "days": 7})
        assert by_team.status_code == 200
        page = by_team.text
        charts = page.split("<main>", 1)[1].count("<svg")  # the header has the mark
        assert charts == 2 and "Cost per day by team" in page
        assert "finance" in page and "web" in page
        assert "<script" not in page
        by_service = ada.get("/costs", params={"by": "service"}).text
        assert "billing" in by_service and "search" in by_service
        assert "test-model" in ada.get("/costs", params={"by": "model"}).text

        export = ada.get("/costs.csv", params={"days": 7})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    today = datetime.now(UTC).date().isoformat()
    got = {(r["service"], r["team"], r["model"], r["day"]): int(r["requests"]) for r in rows}
    assert got == {
        ("billing", "finance", "test-model", today): 3,
        ("search", "web", "test-model", today): 1,
    }
    per_call = (4 * 2.0 + 4 * 8.0) / 1_000_000  # four words in, four words out
    costs = {r["service"]: float(r["cost_usd"]) for r in rows}
    assert costs["billing"] == pytest.approx(3 * per_call)


def _totals(page: str) -> dict[str, tuple[int, str]]:
    """The page's totals table: each key's requests and cost as shown."""
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td>.*?<td>\$([\d.]+)</td></tr>", page)
    return {html.unescape(key): (int(requests), cost) for key, requests, cost in rows}


def test_the_cost_page_and_export_show_calls_per_prompt_version_and_those_not_by_name(
    hub: RunningHub, upstream: ScriptedUpstream
):
    upstream.script(reply="one two three four")
    builder = as_service(hub, hub.new_service("notes-builder", team="docs"))
    first = {"role": "user", "content": "Write notes on {{topic}}"}
    made = builder.post(
        "/api/prompts",
        json={"name": "notes", "messages": [first], "model": "test-model"},
    )
    second = {"role": "user", "content": "Write short cheerful notes on {{topic}}"}
    added = builder.post(
        "/api/prompts/notes/versions", json={"messages": [second], "model": "test-model"}
    )
    builder.close()
    assert made.status_code == 201 and added.status_code == 201, added.text
    token = hub.new_service("notes-bot", team="docs")
    with httpx.Client(
        base_url=hub.url + "/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as bot:
        answers = [
            bot.post("/prompts/notes/completions", json={"variables": {"topic": "search"}}),
            bot.post("/prompts/notes/completions", json={"variables": {"topic": "search"}}),
            bot.post(
                "/prompts/notes/completions", json={"variables": {"topic": "search"}, "version": 2}
            ),
            bot.post(
                "/chat/completions",
                json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
            ),
        ]
    assert [answer.status_code for answer in answers] == [200] * 4

    # Four words out each; in: "Write notes on search" (4), "Write short cheerful notes on
    # search" (6), "hi" (1); the catalog's test-model costs $2 in and $8 out per million.
    def cost(words_in: int, calls: int) -> float:
        return calls * (words_in * 2.0 + 4 * 8.0) / 1_000_000

    expected = {
        "notes v1": (2, cost(4, 2)),
        "notes v2": (1, cost(6, 1)),
        "not by name": (1, cost(1, 1)),
    }
    with _person(hub, "ada", admin=True) as ada:
        by_prompt = ada.get("/costs", params={"by": "prompt", "days": 7})
        export = ada.get("/costs.csv", params={"days": 7})

    assert by_prompt.status_code == 200
    assert "Cost per day by prompt" in by_prompt.text
    assert _totals(by_prompt.text) == {
        key: (requests, f"{usd:.6f}") for key, (requests, usd) in expected.items()
    }
    rows = list(csv.DictReader(io.StringIO(export.text)))
    got = {(r["prompt"], r["prompt_version"]): r for r in rows}
    assert {key: int(row["requests"]) for key, row in got.items()} == {
        ("notes", "1"): 2,
        ("notes", "2"): 1,
        ("", ""): 1,
    }
    assert float(got[("notes", "1")]["cost_usd"]) == pytest.approx(cost(4, 2))
    assert float(got[("notes", "2")]["cost_usd"]) == pytest.approx(cost(6, 1))
    assert float(got[("", "")]["cost_usd"]) == pytest.approx(cost(1, 1))
    assert {r["service"] for r in rows} == {"notes-bot"}


def test_costs_are_for_admins_only(hub: RunningHub):
    with httpx.Client(base_url=hub.url) as nobody:
        assert nobody.get("/costs").headers["location"].startswith("/login")
    with _person(hub, "bob", admin=False) as bob:
        refused = bob.get("/costs")
        assert refused.status_code == 403 and "Only admins" in refused.text
        assert bob.get("/costs.csv").status_code == 403
        assert "/costs" not in bob.get("/servers").text
