"""The agent catalog API over real HTTP: drafts, versions, who sees what, and the run spec."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.owners import namesakes

PersonClient = Callable[[str], httpx.Client]


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def weather(hub: RunningHub) -> Iterator[McpTestServer]:
    """The weather MCP server, registered in the hub by its team."""
    token = hub.new_service("weather-team-bot", team="weather")
    with McpTestServer() as server:
        with httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            registered = http.post(
                "/api/mcp/servers",
                json={"slug": "weather", "name": "Weather", "team": "weather", "url": server.url},
            )
            assert registered.status_code == 201, registered.text
        yield server


@pytest.fixture
def person(hub: RunningHub) -> Iterator[PersonClient]:
    """A client acting as a person through the chat app's token and X-Switchboard-User."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team, admin in [
            ("alice", "support", False),
            ("bob", "support", False),
            ("carol", "sales", False),
            ("root", "platform", True),
        ]:
            create_user(
                session=session,
                username=name,
                password=f"pw-{name}",
                team=team,
                role=Role.admin if admin else Role.builder,
            )
    clients: list[httpx.Client] = []

    def client_for(username: str) -> httpx.Client:
        client = httpx.Client(
            base_url=hub.url,
            headers={"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": username},
            timeout=30,
        )
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()


def _agent(**extra: Any) -> dict[str, Any]:
    return {
        "slug": "forecaster",
        "name": "Forecaster",
        "description": "Tells you what to wear in the office cities.",
        "instructions": "Use the weather tool, then advise on clothes.",
        "model": "test-model",
        "mcp_servers": ["weather"],
        "allowed_tools": {"weather": ["get_weather"]},
        "starters": ["What should I wear in Lisbon?", "  "],
        "max_steps": 5,
        "max_tokens": 512,
        "timeout_s": 60,
        **extra,
    }


def test_publishing_freezes_versions_and_restoring_makes_an_earlier_one_live(
    person: PersonClient, weather: McpTestServer
) -> None:
    alice = person("alice")
    created = alice.post("/api/agents", json=_agent())
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["owner"] == "alice" and agent["team"] == "support"
    assert agent["live"] is None and agent["versions"] == []
    assert agent["draft"]["starters"] == ["What should I wear in Lisbon?"]

    assert (
        alice.patch("/api/agents/forecaster", json={"instructions": "v1 words"}).status_code == 200
    )
    first = alice.post("/api/agents/forecaster/publish")
    assert first.status_code == 201, first.text
    assert first.json()["number"] == 1 and first.json()["is_live"] is True
    assert first.json()["published_by"] == "alice"

    alice.patch("/api/agents/forecaster", json={"instructions": "v2 words", "name": "Forecaster 2"})
    assert alice.post("/api/agents/forecaster/publish").json()["number"] == 2
    alice.patch("/api/agents/forecaster", json={"instructions": "unpublished words"})

    current = alice.get("/api/agents/forecaster").json()
    assert current["live"]["number"] == 2 and current["live"]["instructions"] == "v2 words"
    assert current["draft"]["instructions"] == "unpublished words"
    versions = alice.get("/api/agents/forecaster/versions").json()
    assert [(v["number"], v["is_live"]) for v in versions] == [(2, True), (1, False)]

    restored = alice.post("/api/agents/forecaster/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["number"] == 1 and restored.json()["is_live"] is True
    live = alice.get("/api/agents/forecaster/live").json()
    assert live["version"] == 1 and live["instructions"] == "v1 words"
    assert live["name"] == "Forecaster"
    after = alice.get("/api/agents/forecaster").json()
    assert after["live"]["number"] == 1
    assert after["draft"]["instructions"] == "unpublished words"
    assert [v["number"] for v in after["versions"]] == [2, 1]
    assert alice.post("/api/agents/forecaster/versions/7/restore").status_code == 404


def test_the_live_spec_has_the_allowed_tools_of_active_servers_and_the_model_prices(
    person: PersonClient, hub: RunningHub, weather: McpTestServer
) -> None:
    alice = person("alice")
    assert alice.post("/api/agents", json=_agent()).status_code == 201
    assert alice.get("/api/agents/forecaster/live").status_code == 404
    draft = alice.get("/api/agents/forecaster/draft-run-spec")
    assert draft.status_code == 200, draft.text
    assert draft.json()["is_draft"] is True and draft.json()["version"] is None
    alice.post("/api/agents/forecaster/publish")

    live = alice.get("/api/agents/forecaster/live").json()
    assert live["slug"] == "forecaster" and live["owner"] == "alice"
    assert live["version"] == 1 and live["is_draft"] is False
    assert live["model"] == "test-model" and live["model_available"] is True
    assert (live["input_usd_per_million"], live["output_usd_per_million"]) == (2.0, 8.0)
    assert (live["max_steps"], live["max_tokens"], live["timeout_s"]) == (5, 512, 60)
    assert [(t["server"], t["name"]) for t in live["tools"]] == [("weather", "get_weather")]
    tool = live["tools"][0]
    assert tool["input_schema"]["required"] == ["city"]
    assert "temperature" in tool["description"]

    # Without an allow-list the agent gets every tool the server offers.
    alice.patch("/api/agents/forecaster", json={"allowed_tools": {}})
    everything = alice.get("/api/agents/forecaster/draft-run-spec").json()
    assert {t["name"] for t in everything["tools"]} == {"get_weather", "flaky_forecast"}

    # A disabled server's tools leave the agent.
    token = hub.new_service("weather-admin", team="weather")
    disabled = httpx.post(
        f"{hub.url}/api/mcp/servers/weather/disable",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert disabled.status_code == 200
    off = alice.get("/api/agents/forecaster/live").json()
    assert off["tools"] == [] and off["unavailable_servers"] == ["weather"]


def test_an_unknown_model_server_or_tool_is_refused_with_what_to_fix(
    person: PersonClient, weather: McpTestServer
) -> None:
    alice = person("alice")
    model = alice.post("/api/agents", json=_agent(model="gpt-17"))
    assert model.status_code == 422
    assert "'gpt-17'" in model.json()["detail"] and "test-model" in model.json()["detail"]

    server = alice.post("/api/agents", json=_agent(mcp_servers=["payroll"], allowed_tools={}))
    assert server.status_code == 422
    assert "'payroll'" in server.json()["detail"]

    tool = alice.post("/api/agents", json=_agent(allowed_tools={"weather": ["rm_rf"]}))
    assert tool.status_code == 422
    assert "'rm_rf'" in tool.json()["detail"] and "get_weather" in tool.json()["detail"]

    stray = alice.post("/api/agents", json=_agent(mcp_servers=[]))
    assert stray.status_code == 422
    assert "not one of its MCP servers" in stray.json()["detail"]

    bad_slug = alice.post("/api/agents", json=_agent(slug="Not A Slug"))
    assert bad_slug.status_code == 422
    assert alice.get("/api/agents", params={"mine": True}).json() == []

    assert alice.post("/api/agents", json=_agent()).status_code == 201
    again = alice.post("/api/agents", json=_agent())
    assert again.status_code == 409
    patched = alice.patch("/api/agents/forecaster", json={"model": "gpt-17"})
    assert patched.status_code == 422 and "test-model" in patched.json()["detail"]
    assert alice.get("/api/agents/forecaster").json()["draft"]["model"] == "test-model"
    # Taking a server out takes its allow-list with it.
    dropped = alice.patch("/api/agents/forecaster", json={"mcp_servers": []})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["draft"]["allowed_tools"] == {}


def test_another_user_sees_nothing_unpublished_and_can_use_a_published_agent(
    person: PersonClient, weather: McpTestServer
) -> None:
    alice, carol = person("alice"), person("carol")
    assert alice.post("/api/agents", json=_agent()).status_code == 201

    for path in ("", "/live", "/versions", "/draft-run-spec"):
        hidden = carol.get(f"/api/agents/forecaster{path}")
        assert hidden.status_code == 404, (path, hidden.text)
    assert carol.patch("/api/agents/forecaster", json={"name": "Mine"}).status_code == 404
    assert carol.post("/api/agents/forecaster/publish").status_code == 404
    assert carol.delete("/api/agents/forecaster").status_code == 404
    assert carol.get("/api/agents").json() == []
    assert carol.get("/api/agents", params={"mine": True}).json() == []

    assert alice.post("/api/agents/forecaster/publish").status_code == 201
    alice.patch("/api/agents/forecaster", json={"name": "Secret name", "instructions": "secret"})

    seen = carol.get("/api/agents/forecaster")
    assert seen.status_code == 200
    assert seen.json()["name"] == "Forecaster"
    assert seen.json()["draft"]["instructions"] == "Use the weather tool, then advise on clothes."
    assert "secret" not in seen.text.lower()
    live = carol.get("/api/agents/forecaster/live")
    assert live.status_code == 200 and live.json()["tools"][0]["name"] == "get_weather"
    assert [a["slug"] for a in carol.get("/api/agents").json()] == ["forecaster"]
    assert carol.get("/api/agents").json()[0]["name"] == "Forecaster"

    assert carol.patch("/api/agents/forecaster", json={"name": "Mine"}).status_code == 403
    assert carol.post("/api/agents/forecaster/publish").status_code == 403
    assert carol.post("/api/agents/forecaster/versions/1/restore").status_code == 403
    assert carol.get("/api/agents/forecaster/draft-run-spec").status_code == 403
    assert carol.delete("/api/agents/forecaster").status_code == 403

    assert alice.patch("/api/agents/forecaster", json={"visibility": "private"}).status_code == 200
    assert carol.get("/api/agents/forecaster").status_code == 404
    assert carol.get("/api/agents/forecaster/live").status_code == 404
    assert carol.get("/api/agents").json() == []
    # Admins see everything.
    assert person("root").get("/api/agents/forecaster").json()["name"] == "Secret name"


def test_a_team_agent_is_for_the_owners_team_only(
    hub: RunningHub, person: PersonClient, weather: McpTestServer
) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        # In sales first and support second, as the identity provider's groups may list them.
        dana = create_user(session=session, username="dana", password="pw-dana", team="sales")
        dana.teams = ["sales", "support"]
        session.add(dana)
        session.commit()
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    assert alice.post("/api/agents", json=_agent(visibility="team")).status_code == 201
    assert bob.get("/api/agents/forecaster").status_code == 404  # not published yet
    alice.post("/api/agents/forecaster/publish")
    assert bob.get("/api/agents/forecaster/live").status_code == 200
    assert [a["slug"] for a in bob.get("/api/agents").json()] == ["forecaster"]
    assert carol.get("/api/agents/forecaster").status_code == 404
    assert carol.get("/api/agents/forecaster/live").status_code == 404
    assert carol.get("/api/agents").json() == []
    assert person("dana").get("/api/agents/forecaster/live").status_code == 200


def test_the_list_searches_and_mine_includes_drafts(
    person: PersonClient, weather: McpTestServer
) -> None:
    alice, bob = person("alice"), person("bob")
    alice.post("/api/agents", json=_agent())
    alice.post("/api/agents/forecaster/publish")
    alice.post(
        "/api/agents",
        json=_agent(
            slug="expenses",
            name="Expenses",
            description="Files receipts.",
            mcp_servers=[],
            allowed_tools={},
        ),
    )
    assert [a["slug"] for a in bob.get("/api/agents", params={"q": "office wear"}).json()] == [
        "forecaster"
    ]
    assert bob.get("/api/agents", params={"q": "payroll"}).json() == []
    assert bob.get("/api/agents", params={"q": "receipts"}).json() == []
    mine = alice.get("/api/agents", params={"mine": True}).json()
    assert [(a["slug"], a["live_version"]) for a in mine] == [("expenses", None), ("forecaster", 1)]
    assert [
        a["slug"] for a in alice.get("/api/agents", params={"mine": True, "q": "receipts"}).json()
    ] == ["expenses"]


def test_a_service_token_owns_what_it_creates_and_deleting_removes_every_version(
    hub: RunningHub, person: PersonClient
) -> None:
    token = hub.new_service("ops-bot", team="ops")
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as bot:
        body = _agent(mcp_servers=[], allowed_tools={})
        created = bot.post("/api/agents", json=body)
        assert created.status_code == 201, created.text
        assert (created.json()["owner"], created.json()["team"]) == ("ops-bot", "ops")
        bot.post("/api/agents/forecaster/publish")
        assert person("alice").delete("/api/agents/forecaster").status_code == 403
        assert bot.delete("/api/agents/forecaster").status_code == 204
        assert bot.get("/api/agents/forecaster").status_code == 404
        assert bot.get("/api/agents", params={"mine": True}).json() == []
    assert httpx.get(f"{hub.url}/api/agents", timeout=30).status_code == 401


def _refusals(client: httpx.Client, slug: str) -> list[int]:
    """What a caller gets for reading the draft, changing it, publishing and deleting."""
    return [
        client.get(f"/api/agents/{slug}/draft-run-spec").status_code,
        client.patch(f"/api/agents/{slug}", json={"name": "Taken over"}).status_code,
        client.post(f"/api/agents/{slug}/publish").status_code,
        client.delete(f"/api/agents/{slug}").status_code,
    ]


def test_a_person_named_like_a_service_cannot_touch_its_agents_nor_the_service_theirs(
    hub: RunningHub,
) -> None:
    service, person = namesakes(hub, "billing-bot", team="billing")
    with service, person:
        for owner, other, slug in ((service, person, "invoicer"), (person, service, "expenses")):
            body = _agent(slug=slug, mcp_servers=[], allowed_tools={}, visibility="team")
            created = owner.post("/api/agents", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["owner"] == "billing-bot"
            # Unpublished, the agent is not there for the namesake.
            assert _refusals(other, slug) == [404] * 4
            assert other.get(f"/api/agents/{slug}").status_code == 404
            assert (
                owner.patch(f"/api/agents/{slug}", json={"instructions": "v1"}).status_code == 200
            )
            assert owner.post(f"/api/agents/{slug}/publish").status_code == 201
            owner.patch(f"/api/agents/{slug}", json={"instructions": "unpublished words"})
            # Published to the team, the namesake may read the live version, nothing more.
            assert _refusals(other, slug) == [403] * 4
            assert other.get(f"/api/agents/{slug}").json()["draft"]["instructions"] == "v1"
            mine = owner.get(f"/api/agents/{slug}").json()
            assert mine["draft"]["instructions"] == "unpublished words"
        assert [a["slug"] for a in service.get("/api/agents", params={"mine": True}).json()] == [
            "invoicer"
        ]
        assert [a["slug"] for a in person.get("/api/agents", params={"mine": True}).json()] == [
            "expenses"
        ]
