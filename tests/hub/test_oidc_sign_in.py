"""Company sign-in over real HTTP: the local OpenID Connect provider that `switchboard run`
starts (oidc-provider-mock), and a scripted provider for ID tokens no honest provider issues."""

import html
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlmodel import Session, select

from hub.core.config import Settings
from hub.core.db import get_engine
from hub.main import create_app
from hub.models.user import User
from tests.support.identity_provider import CLIENT_ID, CLIENT_SECRET, ScriptedIdentityProvider
from tests.support.servers import ThreadedServer, free_port, served_module

PORT = free_port()


def _hub_settings(hub_settings: Settings, issuer: str, client_id: str, secret: str) -> Settings:
    return hub_settings.model_copy(
        update={
            "public_hub_url": f"http://127.0.0.1:{PORT}",
            "oidc_issuer": issuer,
            "oidc_client_id": client_id,
            "oidc_client_secret": secret,
            "oidc_leeway_s": 0,
        }
    )


@pytest.fixture
def local_provider(tmp_path: Path) -> Iterator[str]:
    """The development provider, as `switchboard run` starts it, with nonces required."""
    with served_module(
        "oidc_provider_mock", tmp_path / "provider.log", args=["--require-nonce"]
    ) as port:
        yield f"http://127.0.0.1:{port}"


def _set_person(provider: str, subject: str, **claims: object) -> None:
    response = httpx.put(f"{provider}/users/{subject}", json=claims, timeout=10)
    assert response.status_code < 300, response.text


def _start(browser: httpx.Client, hub_url: str) -> str:
    started = browser.get(f"{hub_url}/auth/oidc/start", params={"next": "/servers"})
    assert started.status_code == 303, started.text
    return started.headers["location"]


def _authorize_at_local_provider(browser: httpx.Client, authorize_url: str, subject: str) -> str:
    """The person picks who they are on the provider's page; returns the callback URL."""
    approved = browser.post(authorize_url, data={"sub": subject})
    assert approved.status_code == 302, approved.text
    callback = approved.headers["location"]
    assert "code=" in callback, callback
    return callback


def _with_param(url: str, key: str, value: str) -> str:
    """`url` with one query parameter changed, as someone tampering with a link would."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def _me(browser: httpx.Client, hub_url: str) -> dict[str, object]:
    response = browser.get(f"{hub_url}/api/auth/me")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_groups_at_the_provider_give_team_and_role_and_a_removed_group_removes_the_role(
    hub_settings: Settings, local_provider: str
) -> None:
    settings = _hub_settings(hub_settings, local_provider, "switchboard", "dev-secret")
    groups = ["team-data", "team-growth", "switchboard-builders", "all-staff"]
    _set_person(local_provider, "ana-1", name="Ana Lima", email="ana@example.com", groups=groups)
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        callback = _authorize_at_local_provider(browser, _start(browser, hub.base_url), "ana-1")
        landed = browser.get(callback)
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/servers"
        me = _me(browser, hub.base_url)
        assert (me["kind"], me["role"], me["teams"]) == ("user", "builder", ["data", "growth"])

        # The IdP's admin takes Ana out of the builders group: at her next sign-in she is a
        # member, and still the same person (same row, same name).
        _set_person(
            local_provider, "ana-1", name="Ana Lima", email="ana@example.com", groups=["team-data"]
        )
        browser.post(f"{hub.base_url}/logout", headers={"origin": hub.base_url})
        callback = _authorize_at_local_provider(browser, _start(browser, hub.base_url), "ana-1")
        assert browser.get(callback).status_code == 303
        me_again = _me(browser, hub.base_url)
        assert (me_again["role"], me_again["teams"]) == ("member", ["data"])
        assert me_again["name"] == me["name"]
        refused = browser.post(
            f"{hub.base_url}/api/agents",
            json={
                "slug": "ana-agent",
                "name": "Ana's agent",
                "instructions": "Hi.",
                "model": "test-model",
            },
            headers={"origin": hub.base_url},
        )
        assert refused.status_code == 403, refused.text
        assert "builder" in refused.json()["detail"]
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        people = session.exec(select(User).where(User.subject == "ana-1")).all()
        assert [(p.issuer, p.display_name, p.email) for p in people] == [
            (local_provider, "Ana Lima", "ana@example.com")
        ]


def test_a_wrong_nonce_is_refused(hub_settings: Settings, local_provider: str) -> None:
    settings = _hub_settings(hub_settings, local_provider, "switchboard", "dev-secret")
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        tampered = _with_param(_start(browser, hub.base_url), "nonce", "a-nonce-from-elsewhere")
        callback = _authorize_at_local_provider(browser, tampered, "ben-1")
        refused = browser.get(callback)
        assert refused.status_code == 400
        assert "nonce does not match" in refused.text
        assert _signed_out(browser, hub.base_url)


def _signed_out(browser: httpx.Client, hub_url: str) -> bool:
    return browser.get(f"{hub_url}/api/auth/me").status_code == 401


def test_a_replayed_authorization_code_is_refused(
    hub_settings: Settings, local_provider: str
) -> None:
    settings = _hub_settings(hub_settings, local_provider, "switchboard", "dev-secret")
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        callback = _authorize_at_local_provider(browser, _start(browser, hub.base_url), "cy-1")
        pending = browser.cookies.get("switchboard_sign_in")
        assert browser.get(callback).status_code == 303
        # An attacker who captured the callback URL and the pending cookie replays both.
        with httpx.Client(timeout=10, cookies={"switchboard_sign_in": pending or ""}) as thief:
            replayed = thief.get(callback)
            assert replayed.status_code == 400
            assert "refused the sign-in code" in replayed.text
            assert _signed_out(thief, hub.base_url)


@pytest.fixture
def scripted_provider() -> Iterator[ScriptedIdentityProvider]:
    with ScriptedIdentityProvider(people={"dee-1": {"name": "Dee", "groups": []}}) as provider:
        provider.next_subject = "dee-1"
        yield provider


def _sign_in_at_scripted(browser: httpx.Client, hub_url: str) -> httpx.Response:
    authorize = _start(browser, hub_url)
    approved = browser.get(authorize)
    assert approved.status_code == 302, approved.text
    return browser.get(approved.headers["location"])


@pytest.mark.parametrize(
    ("fault", "value", "message"),
    [
        ("audience", "another-app", "is meant for 'another-app', not for this hub"),
        ("expires_in_s", -120, "The ID token expired"),
        ("sign_with_unpublished_key", True, "does not publish"),
        ("issuer", "http://127.0.0.1:9/", "was issued by 'http://127.0.0.1:9/'"),
        ("nonce", "replayed-nonce", "nonce does not match"),
    ],
)
def test_an_id_token_no_honest_provider_issues_is_refused_with_the_reason(
    hub_settings: Settings,
    scripted_provider: ScriptedIdentityProvider,
    fault: str,
    value: object,
    message: str,
) -> None:
    setattr(scripted_provider.faults, fault, value)
    settings = _hub_settings(hub_settings, scripted_provider.url, CLIENT_ID, CLIENT_SECRET)
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        refused = _sign_in_at_scripted(browser, hub.base_url)
        assert refused.status_code == 400
        assert message in html.unescape(refused.text)
        assert _signed_out(browser, hub.base_url)


def test_keys_the_provider_rotates_in_are_fetched_again(
    hub_settings: Settings, scripted_provider: ScriptedIdentityProvider
) -> None:
    settings = _hub_settings(hub_settings, scripted_provider.url, CLIENT_ID, CLIENT_SECRET)
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        assert _sign_in_at_scripted(browser, hub.base_url).status_code == 303
        fetches = scripted_provider.jwks_fetches
        scripted_provider.rotate_keys()
        browser.post(f"{hub.base_url}/logout", headers={"origin": hub.base_url})
        assert _sign_in_at_scripted(browser, hub.base_url).status_code == 303
        assert scripted_provider.jwks_fetches == fetches + 1
        assert _me(browser, hub.base_url)["name"] == "dee-1"


def test_a_callback_with_another_sign_ins_state_is_refused(
    hub_settings: Settings, scripted_provider: ScriptedIdentityProvider
) -> None:
    settings = _hub_settings(hub_settings, scripted_provider.url, CLIENT_ID, CLIENT_SECRET)
    with (
        ThreadedServer(create_app(settings), port=PORT) as hub,
        httpx.Client(timeout=10) as browser,
    ):
        approved = browser.get(_start(browser, hub.base_url))
        refused = browser.get(_with_param(approved.headers["location"], "state", "forged"))
        assert refused.status_code == 400
        assert "state does not match" in refused.text
        assert _signed_out(browser, hub.base_url)


def test_people_are_told_apart_by_issuer_and_subject_never_by_email(
    hub_settings: Settings, scripted_provider: ScriptedIdentityProvider
) -> None:
    scripted_provider.people = {
        "sub-a": {"email": "sam@example.com", "preferred_username": "sam"},
        "sub-b": {"email": "sam@example.com", "preferred_username": "sam"},
    }
    settings = _hub_settings(hub_settings, scripted_provider.url, CLIENT_ID, CLIENT_SECRET)
    names = []
    with ThreadedServer(create_app(settings), port=PORT) as hub:
        for subject in ("sub-a", "sub-b", "sub-a"):
            scripted_provider.next_subject = subject
            with httpx.Client(timeout=10) as browser:
                assert _sign_in_at_scripted(browser, hub.base_url).status_code == 303
                names.append(_me(browser, hub.base_url)["name"])
    assert names == ["sam", "sam-2", "sam"]
