"""Circuit breakers: a dead deployment stops being called, one probe tests it after the
cool-down, and recovery closes it; with Redis, every hub process sees the same breaker."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from hub.main import create_app
from tests.conftest import APP_TOKEN, RunningHub
from tests.support.gateway import FAST, Model, ask, gateway_settings, new_service, redis_hubs
from tests.support.servers import ThreadedServer, free_port
from tests.support.upstream import ScriptedUpstream

BREAKER = {
    **FAST,
    "retry_attempts": 1,
    "breaker_failures": 3,
    "breaker_cooldown_s": 1.5,
    # Room for a machine busy with other tests: only scripted failures should count.
    "upstream_first_byte_timeout_s": 5.0,
    "request_deadline_s": 10.0,
}


@pytest.fixture
def spare() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        server.script(reply="the fallback answers")
        yield server


def _breaker(url: str, admin: str, model: str = "primary") -> dict[str, object]:
    response = httpx.get(
        url + "/api/gateway/breakers", headers={"authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 200, response.text
    [state] = [row for row in response.json() if row["model"] == model]
    return dict(state)


def _wait_for_state(url: str, admin: str, state: str) -> None:
    deadline = time.monotonic() + 5
    while _breaker(url, admin)["state"] != state:
        assert time.monotonic() < deadline, f"the breaker did not become {state}"
        time.sleep(0.05)


def _answered_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-switchboard-model"]


def _answers(urls: list[str], count: int) -> list[str]:
    """`count` requests at once, spread over the hubs; the model that answered each."""
    with ThreadPoolExecutor(count) as pool:
        responses = list(
            pool.map(lambda i: ask(urls[i % len(urls)], APP_TOKEN, "primary"), range(count))
        )
    return [_answered_by(r) for r in responses]


def _open_probe_recover(urls: list[str], admin: str, upstream: ScriptedUpstream) -> None:
    """The whole life of a breaker, over one or more hubs sharing it."""
    upstream.script(status=503, error_message="region down")
    for _ in range(3):
        assert _answered_by(ask(urls[0], APP_TOKEN, "primary")) == "spare"
    assert upstream.hits == 3
    assert _breaker(urls[-1], admin)["state"] == "open"

    # Open: every hub skips the dead deployment at once and the fallback answers.
    started = time.monotonic()
    assert _answers(urls, 6) == ["spare"] * 6
    assert upstream.hits == 3
    assert time.monotonic() - started < 1.0

    # After the cool-down exactly one probe goes through (it is slow, so the others arrive
    # while it is under way); it fails, so the breaker opens again.
    upstream.script(status=503, delay_s=0.3)
    _wait_for_state(urls[0], admin, "half_open")
    assert _answers(urls, 6) == ["spare"] * 6
    assert upstream.hits == 4
    assert _breaker(urls[-1], admin)["state"] == "open"

    # The deployment recovers: the next probe succeeds and closes the breaker.
    upstream.script(reply="primary is back")
    _wait_for_state(urls[-1], admin, "half_open")
    assert _answered_by(ask(urls[-1], APP_TOKEN, "primary")) == "primary"
    assert _breaker(urls[0], admin)["state"] == "closed"
    assert _answers(urls, 4) == ["primary"] * 4
    assert upstream.hits == 9


def test_a_breaker_opens_probes_once_and_closes_on_recovery(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    settings = gateway_settings(
        tmp_path,
        Model("primary", [upstream.url], fallbacks=["spare"]),
        Model("spare", [spare.url]),
        **BREAKER,
    )
    admin = new_service(settings, "ops", team="platform", admin=True)
    with ThreadedServer(create_app(settings)) as server:
        _open_probe_recover([server.base_url], admin, upstream)


def test_hubs_sharing_redis_share_the_breaker(
    tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
):
    models = (Model("primary", [upstream.url], fallbacks=["spare"]), Model("spare", [spare.url]))
    with redis_hubs(tmp_path, models, BREAKER) as hubs:
        admin = new_service(hubs.settings, "ops", team="platform", admin=True)
        # Hub a sees the failures and opens the breaker; hub b skips the deployment at once.
        _open_probe_recover([hubs.a, hubs.b], admin, upstream)


def test_breaker_state_is_for_admins_only(hub: RunningHub):
    response = httpx.get(
        hub.url + "/api/gateway/breakers",
        headers={"authorization": f"Bearer {hub.new_service('plain')}"},
    )
    assert response.status_code == 403
    assert "admins" in response.json()["detail"]
    page = httpx.get(
        hub.url + "/gateway", headers={"authorization": f"Bearer {hub.new_service('plain-2')}"}
    )
    assert page.status_code == 403 and "Only admins" in page.text
    admin = hub.new_service("ops", admin=True)
    page = httpx.get(hub.url + "/gateway", headers={"authorization": f"Bearer {admin}"})
    assert page.status_code == 200
    assert "openai-compatible/local/scripted-model" in page.text and "closed" in page.text


def test_a_redis_that_cannot_be_reached_lets_requests_through(
    tmp_path: Path, upstream: ScriptedUpstream
):
    settings = gateway_settings(
        tmp_path,
        Model("primary", [upstream.url]),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    limited = new_service(settings, "limited", rpm=100, monthly_budget_usd=10.0)
    admin = new_service(settings, "ops", admin=True)
    with ThreadedServer(create_app(settings)) as server:
        assert ask(server.base_url, limited, "primary").status_code == 200
        upstream.script(status=503)
        assert ask(server.base_url, APP_TOKEN, "primary").status_code == 502
        state = httpx.get(
            server.base_url + "/api/gateway/breakers", headers={"authorization": f"Bearer {admin}"}
        )
    assert state.status_code == 503
    assert "Redis, which cannot be reached" in state.json()["detail"]


def test_with_every_breaker_open_the_client_is_told_when_to_try_again(
    tmp_path: Path, upstream: ScriptedUpstream
):
    settings = gateway_settings(tmp_path, Model("primary", [upstream.url]), **BREAKER)
    with ThreadedServer(create_app(settings)) as server:
        upstream.script(status=503, error_message="region down")
        for _ in range(3):
            assert ask(server.base_url, APP_TOKEN, "primary").status_code == 502

        refused = ask(server.base_url, APP_TOKEN, "primary")

    assert upstream.hits == 3
    assert refused.status_code == 503
    assert "circuit breakers are open" in refused.json()["error"]["message"]
    # The cool-down is 1.5 s: try again in 1 or 2 whole seconds.
    assert refused.headers["retry-after"] in ("1", "2")
