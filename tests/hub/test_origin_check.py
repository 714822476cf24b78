"""Cross-site request forgery, over real HTTP: a signed-in person's browser carries the hub's
session cookie to every request, so a state-changing one must come from the hub's own pages."""

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.mcp_server import McpTestServer

EVIL = "http://evil.example"


@pytest.fixture
def grace(hub: RunningHub) -> Iterator[httpx.Client]:
    """Grace's browser, signed in to the hub (it sends no Origin unless a test says so)."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(
            session=session,
            username="grace",
            password="pw-grace",
            team="weather",
            role=Role.builder,
        )
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        signed_in = client.post("/login", data={"username": "grace", "password": "pw-grace"})
        assert signed_in.status_code == 303, signed_in.text
        assert client.cookies.get("switchboard_session")
        yield client


@pytest.fixture
def weather() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


def _form(url: str, slug: str = "weather") -> dict[str, str]:
    return {
        "name": "Weather",
        "slug": slug,
        "description": "Forecasts for office cities.",
        "team": "weather",
        "url": url,
        "transport": "streamable_http",
    }


def _api_body(url: str, slug: str = "weather") -> dict[str, str]:
    return {
        "slug": slug,
        "name": "Weather",
        "description": "Forecasts.",
        "team": "weather",
        "url": url,
    }


def _slugs(client: httpx.Client) -> list[str]:
    listing = client.get("/api/mcp/servers")
    assert listing.status_code == 200, listing.text
    return [server["slug"] for server in listing.json()]


def test_a_signed_in_persons_cross_site_posts_are_refused_and_create_nothing(
    grace: httpx.Client, weather: McpTestServer
) -> None:
    page = grace.post("/servers/new", data=_form(weather.url), headers={"Origin": EVIL})
    assert page.status_code == 403
    assert EVIL in page.text and "hub's own pages" in page.text

    api = grace.post("/api/mcp/servers", json=_api_body(weather.url), headers={"Origin": EVIL})
    assert api.status_code == 403
    assert EVIL in api.json()["detail"]

    by_referer = grace.post(
        "/api/mcp/servers", json=_api_body(weather.url), headers={"Referer": f"{EVIL}/page"}
    )
    assert by_referer.status_code == 403 and "Referer" in by_referer.json()["detail"]
    assert _slugs(grace) == []


def test_posts_naming_the_hubs_own_origin_pass_where_a_foreign_one_is_refused(
    hub: RunningHub, grace: httpx.Client, weather: McpTestServer
) -> None:
    foreign = grace.post("/servers/new", data=_form(weather.url), headers={"Origin": EVIL})
    assert foreign.status_code == 403

    page = grace.post("/servers/new", data=_form(weather.url), headers={"Origin": hub.url})
    assert page.status_code == 303, page.text
    api = grace.post(
        "/api/mcp/servers",
        json=_api_body(weather.url, slug="weather-api"),
        headers={"Referer": f"{hub.url}/servers"},
    )
    assert api.status_code == 201, api.text
    assert sorted(_slugs(grace)) == ["weather", "weather-api"]


def test_a_signed_in_post_with_neither_origin_nor_referer_or_a_null_origin_is_refused(
    grace: httpx.Client, weather: McpTestServer
) -> None:
    bare = grace.post("/api/mcp/servers", json=_api_body(weather.url))
    assert bare.status_code == 403
    assert "Origin or Referer" in bare.json()["detail"]
    assert "Authorization: Bearer" in bare.json()["detail"]

    null = grace.post("/servers/new", data=_form(weather.url), headers={"Origin": "null"})
    assert null.status_code == 403
    assert _slugs(grace) == []


def test_a_service_token_needs_no_origin_but_a_cookie_on_a_hot_route_does(
    hub: RunningHub, grace: httpx.Client, weather: McpTestServer
) -> None:
    token = hub.new_service("weather-bot", team="weather")
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as service:
        assert service.post("/api/mcp/servers", json=_api_body(weather.url)).status_code == 201
        called = service.post(
            "/api/mcp/servers/weather/tools/get_weather/call", json={"arguments": {"city": "Oslo"}}
        )
        assert called.status_code == 200, called.text
        assert called.json()["isError"] is False

    # The tool-call and model-call routes are answered ahead of the middleware stack.
    forged = grace.post(
        "/api/mcp/servers/weather/tools/get_weather/call",
        content='{"arguments": {"city": "Oslo"}}',
        headers={"Origin": EVIL, "Content-Type": "text/plain"},
    )
    assert forged.status_code == 403 and EVIL in forged.json()["detail"]
    model_call = grace.post(
        "/v1/chat/completions",
        json={"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Origin": EVIL},
    )
    assert model_call.status_code == 403
    assert EVIL in model_call.json()["error"]["message"]


def test_a_cross_site_sign_out_is_refused_and_the_session_stays_valid(
    hub: RunningHub, grace: httpx.Client
) -> None:
    forged = grace.post("/logout", headers={"Origin": EVIL})
    assert forged.status_code == 403
    assert grace.cookies.get("switchboard_session")
    assert grace.get("/servers/new").status_code == 200

    signed_out = grace.post("/logout", headers={"Origin": hub.url})
    assert signed_out.status_code == 303
    assert grace.get("/servers/new").status_code == 303


def test_signing_in_from_another_site_is_refused_but_a_bare_sign_in_is_not(
    hub: RunningHub, grace: httpx.Client
) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as stranger:
        form = {"username": "grace", "password": "pw-grace"}
        forged = stranger.post("/login", data=form, headers={"Origin": EVIL})
        assert forged.status_code == 403
        assert not stranger.cookies.get("switchboard_session")
        assert stranger.post("/login", data=form).status_code == 303
