"""Every gateway call lands on its service, on SQLite and on PostgreSQL."""

from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from tests.conftest import RunningHub
from tests.support.upstream import ScriptedUpstream, count_tokens

REPLY = "one two three four five"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    return database_url


def _usage(hub: RunningHub, admin_token: str, **params: object) -> list[dict[str, object]]:
    response = httpx.get(
        hub.url + "/v1/usage", params=params, headers={"authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()["rows"]
    return rows


def test_tokens_and_cost_land_on_the_calling_service(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(reply=REPLY)
    billing = openai.OpenAI(
        base_url=hub.url + "/v1", api_key=hub.new_service("billing", team="finance"), max_retries=0
    )
    search = openai.OpenAI(
        base_url=hub.url + "/v1", api_key=hub.new_service("search", team="web"), max_retries=0
    )
    admin = hub.new_service("platform-admin", team="platform", admin=True)
    prompt = [{"role": "user", "content": "count my tokens please"}]

    billing.chat.completions.create(model="test-model", messages=prompt)
    list(billing.chat.completions.create(model="test-model", messages=prompt, stream=True))
    search.chat.completions.create(model="test-model", messages=prompt)
    with pytest.raises(openai.NotFoundError):
        search.chat.completions.create(model="no-such-model", messages=prompt)

    rows = {row["service"]: row for row in _usage(hub, admin)}
    prompt_tokens, reply_tokens = count_tokens("count my tokens please"), count_tokens(REPLY)
    assert rows["billing"]["team"] == "finance"
    assert rows["billing"]["model"] == "test-model"
    assert rows["billing"]["requests"] == 2
    assert rows["billing"]["input_tokens"] == 2 * prompt_tokens
    assert rows["billing"]["output_tokens"] == 2 * reply_tokens
    expected_cost = 2 * (prompt_tokens * 2.0 + reply_tokens * 8.0) / 1_000_000
    assert rows["billing"]["cost_usd"] == pytest.approx(expected_cost)
    assert rows["search"]["requests"] == 1 and rows["search"]["team"] == "web"

    by_team = {row["team"]: row for row in _usage(hub, admin, group_by="team")}
    assert set(by_team) == {"finance", "web"}
    assert by_team["finance"]["service"] is None


def test_usage_can_be_limited_to_a_time_range(hub: RunningHub, upstream: ScriptedUpstream):
    upstream.script(reply=REPLY)
    client = openai.OpenAI(base_url=hub.url + "/v1", api_key=hub.app_token, max_retries=0)
    client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "x"}])
    admin = hub.new_service("admin", admin=True)
    now = datetime.now(UTC)

    assert len(_usage(hub, admin, start=(now - timedelta(hours=1)).isoformat())) == 1
    assert _usage(hub, admin, end=(now - timedelta(hours=1)).isoformat()) == []

    response = httpx.get(
        hub.url + "/v1/usage",
        params={"start": now.isoformat(), "end": (now - timedelta(days=1)).isoformat()},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 400
    bad = httpx.get(
        hub.url + "/v1/usage",
        params={"group_by": "colour"},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert bad.status_code == 422 and "group_by" in bad.json()["error"]["message"]


def test_calls_an_agent_makes_are_counted_per_agent(hub: RunningHub, upstream: ScriptedUpstream):
    # The agent runtime calls with the chat app's token, the one service that may name an agent.
    token = hub.app_token
    admin = hub.new_service("usage-admin", team="platform", admin=True)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi there"}]}
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for agent in ("trip-planner", "trip-planner", None):
            headers = {"Authorization": f"Bearer {token}"}
            if agent:
                headers["X-Switchboard-Agent"] = agent
            assert (
                client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
            )
        bad = client.post(
            "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {token}", "X-Switchboard-Agent": "Not A Slug!"},
        )
        assert bad.status_code == 400 and "x-switchboard-agent" in bad.text.lower()
        report = client.get(
            "/v1/usage", params={"group_by": "agent"}, headers={"Authorization": f"Bearer {admin}"}
        ).json()
    by_agent = {row["agent"]: row["requests"] for row in report["rows"]}
    assert by_agent == {"trip-planner": 2, None: 1}
