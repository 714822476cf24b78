"""The agent pages, as people use them: build with the form, publish, browse, restore."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from hub.core.roles import Role
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer
from tests.support.owners import page_clients

SignIn = Callable[[str], httpx.Client]


@pytest.fixture
def weather(hub: RunningHub) -> Iterator[McpTestServer]:
    token = hub.new_service("weather-team-bot", team="weather")
    with McpTestServer() as server:
        registered = httpx.post(
            f"{hub.url}/api/mcp/servers",
            headers={"Authorization": f"Bearer {token}"},
            json={"slug": "weather", "name": "Weather", "team": "weather", "url": server.url},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        yield server


@pytest.fixture
def sign_in(hub: RunningHub) -> Iterator[SignIn]:
    """A browser-like client signed in to the hub's pages as one of three builders."""
    people = [("ada", "support", Role.builder), ("ben", "support", Role.builder)]
    with page_clients(hub, [*people, ("cy", "sales", Role.builder)]) as client_for:
        yield client_for


def _form(**extra: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "name": "Forecaster",
        "slug": "forecaster",
        "description": "Tells you what to wear in the office cities.",
        "visibility": "everyone",
        "instructions": "Look up the weather, then advise on clothes.",
        "model": "test-model",
        "servers": ["weather"],
        "tools:weather": ["get_weather"],
        "starters": "What should I wear in Lisbon?\nAnd in Oslo?",
        "max_steps": "6",
        "max_tokens": "700",
        "timeout_s": "90",
        "action": "save",
        **extra,
    }


def test_pages_send_a_signed_out_person_to_sign_in(hub: RunningHub) -> None:
    for path in ("/agents", "/agents/new", "/agents/forecaster", "/agents/forecaster/edit"):
        response = httpx.get(f"{hub.url}{path}", timeout=30)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


def test_the_builder_offers_the_catalogs_models_and_the_registrys_servers_and_tools(
    sign_in: SignIn, weather: McpTestServer
) -> None:
    ada = sign_in("ada")
    page = ada.get("/agents/new")
    assert page.status_code == 200
    assert '<option value="test-model" selected>' in page.text
    assert 'name="servers" value="weather"' in page.text
    assert 'name="tools:weather" value="get_weather"' in page.text
    assert 'name="tools:weather" value="flaky_forecast"' in page.text
    assert 'name="instructions"' in page.text and 'name="starters"' in page.text
    assert 'value="publish"' in page.text and 'value="save"' in page.text
    assert 'href="/agents"' in page.text  # the nav link


def test_building_and_publishing_with_the_form_makes_a_live_agent_with_its_tools(
    sign_in: SignIn, hub: RunningHub, weather: McpTestServer
) -> None:
    ada = sign_in("ada")
    assert "You have not built an agent yet" in ada.get("/agents").text
    created = ada.post("/agents/new", data=_form(action="publish"))
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/agents/forecaster"
    page = ada.get("/agents/forecaster").text
    assert "v1 live" in page and "published by ada" in page
    assert "(only get_weather)" in page and "And in Oslo?" in page
    assert f'href="http://{hub.settings.app_host}:{hub.settings.app_port}/"' in page

    with httpx.Client(
        base_url=hub.url,
        headers={"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": "ben"},
        timeout=30,
    ) as api:
        live = api.get("/api/agents/forecaster/live").json()
    assert [tool["name"] for tool in live["tools"]] == ["get_weather"]
    assert (live["max_steps"], live["max_tokens"], live["timeout_s"]) == (6, 700, 90)
    assert live["starters"] == ["What should I wear in Lisbon?", "And in Oslo?"]

    # Every tool ticked means no allow-list: the agent gets all of the server's tools.
    edit = ada.get("/agents/forecaster/edit")
    assert edit.status_code == 200 and "Look up the weather" in edit.text
    saved = ada.post(
        "/agents/forecaster/edit",
        data=_form(**{"tools:weather": ["get_weather", "flaky_forecast"]}),
    )
    assert saved.status_code == 303
    page = ada.get("/agents/forecaster").text
    assert "Draft vs live" in page and "allowed tools" in page

    tried = ada.post("/agents/forecaster/edit", data=_form(action="try"))
    assert tried.status_code == 303
    assert tried.headers["location"] == f"http://{hub.settings.app_host}:{hub.settings.app_port}/"


def test_a_refused_form_keeps_what_was_typed_and_says_what_failed(
    sign_in: SignIn, weather: McpTestServer
) -> None:
    ada = sign_in("ada")
    typed = "Very specific instructions 42."
    refused = ada.post("/agents/new", data=_form(model="gpt-17", instructions=typed))
    assert refused.status_code == 422
    assert "&#39;gpt-17&#39; is not in the catalog" in refused.text
    assert typed in refused.text and 'value="forecaster"' in refused.text
    assert '<option value="gpt-17" selected>' in refused.text
    assert 'name="tools:weather" value="get_weather" checked' in refused.text
    assert 'name="tools:weather" value="flaky_forecast" >' in refused.text

    no_tool = ada.post("/agents/new", data=_form(**{"tools:weather": []}))
    assert no_tool.status_code == 422 and "at least one tool" in no_tool.text

    bad_number = ada.post("/agents/new", data=_form(max_steps="many"))
    assert bad_number.status_code == 422 and "max_steps" in bad_number.text
    assert 'value="many"' in bad_number.text
    assert "You have not built an agent yet" in ada.get("/agents").text


def test_the_list_searches_published_agents_and_shows_my_drafts(
    sign_in: SignIn, weather: McpTestServer
) -> None:
    ada, ben = sign_in("ada"), sign_in("ben")
    assert "No agent is published for you yet" in ben.get("/agents").text
    ada.post("/agents/new", data=_form(action="publish"))
    ada.post(
        "/agents/new",
        data=_form(slug="expenses", name="Expenses", description="Files receipts.", servers=[]),
    )
    mine = ada.get("/agents").text
    assert 'href="/agents/expenses"' in mine and "draft only" in mine

    listing = ben.get("/agents", params={"q": "office"}).text
    assert 'href="/agents/forecaster"' in listing
    assert 'href="/agents/expenses"' not in ben.get("/agents").text
    assert "No published agent matches" in ben.get("/agents", params={"q": "payroll"}).text


def test_the_agent_page_shows_versions_and_its_owner_restores_one(
    sign_in: SignIn, weather: McpTestServer
) -> None:
    ada, ben, cy = sign_in("ada"), sign_in("ben"), sign_in("cy")
    ada.post("/agents/new", data=_form(visibility="team"))
    assert ben.get("/agents/forecaster").status_code == 404  # a draft is its owner's
    assert ada.post("/agents/forecaster/publish").status_code == 303
    ada.post(
        "/agents/forecaster/edit",
        data=_form(instructions="Second version.", visibility="team", action="publish"),
    )

    page = ada.get("/agents/forecaster").text
    assert "v2 live" in page and 'id="version-1"' in page
    assert 'action="/agents/forecaster/versions/1/restore"' in page
    assert 'action="/agents/forecaster/versions/2/restore"' not in page

    restored = ada.post("/agents/forecaster/versions/1/restore")
    assert restored.status_code == 303
    page = ada.get("/agents/forecaster").text
    assert "v1 live" in page and "Look up the weather" in page
    assert 'action="/agents/forecaster/versions/2/restore"' in page

    # Ben (same team) reads the live version but cannot change it; Cy (other team) sees nothing.
    seen = ben.get("/agents/forecaster")
    assert seen.status_code == 200 and "v1 live" in seen.text
    assert "/restore" not in seen.text and "Edit the draft" not in seen.text
    assert ben.get("/agents/forecaster/edit").status_code == 403
    assert ben.post("/agents/forecaster/versions/2/restore").status_code == 403
    assert cy.get("/agents/forecaster").status_code == 404
    assert "forecaster" not in cy.get("/agents").text

    assert ada.post("/agents/forecaster/delete").status_code == 303
    assert ada.get("/agents/forecaster").status_code == 404
