"""The chat signs people in through the hub, over real HTTP against the Chainlit process: no
sign-in of its own, sessions that end at the hub end in the chat, and nobody inherits
another person's conversations."""

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user, delete_user, get_user
from hub.services.web_sessions import start_web_session
from tests.app.conftest import PASSWORD, ChatApp, person_key, wait_until
from tests.conftest import RunningHub

EVIL = "http://evil.example"


def _new_session(hub: RunningHub, username: str, role: Role = Role.member) -> str:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = get_user(session=session, username=username) or create_user(
            session=session, username=username, password=PASSWORD, role=role
        )
        return start_web_session(session=session, user=user, days=1, method="password")


@pytest.fixture
def browser(chat_app: ChatApp) -> Iterator[httpx.Client]:
    """A client that keeps cookies, as a browser on the chat's host does."""
    with httpx.Client(base_url=chat_app.url, timeout=15, follow_redirects=False) as client:
        yield client


def _sign_in_to_chat(browser: httpx.Client, chat_app: ChatApp, hub_token: str) -> dict[str, str]:
    """What the chat's page does with a hub session: trade it for Chainlit's token."""
    browser.cookies.set("switchboard_session", hub_token)
    answer = browser.post("/auth/header", json={}, headers={"origin": chat_app.url})
    assert answer.status_code == 200, answer.text
    user = browser.get("/user")
    assert user.status_code == 200, user.text
    body: dict[str, str] = user.json()
    return body


def test_a_signed_out_visit_goes_to_the_hubs_sign_in_and_comes_back(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    page = browser.get("/thread/abc?x=1", headers={"accept": "text/html"})
    assert page.status_code == 303
    expected_back = f"{chat_app.url}/thread/abc?x=1"
    assert page.headers["location"] == f"{hub.url}/login?next={quote(expected_back, safe='')}"

    # The hub's sign-in page sends the person back there after the password.
    _new_session(hub, "ada")
    with httpx.Client(base_url=hub.url, timeout=15) as at_hub:
        signed_in = at_hub.post(
            "/login",
            data={"username": "ada", "password": PASSWORD, "next": expected_back},
            headers={"origin": hub.url},
        )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == expected_back


def test_the_chat_takes_the_hub_session_and_knows_the_person_by_a_key_not_a_name(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    unknown = browser.post("/auth/header", json={}, headers={"origin": chat_app.url})
    assert unknown.status_code == 401
    user = _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada", Role.builder))
    assert user["identifier"] == person_key(hub, "ada")
    assert user["metadata"]["username"] == "ada"  # type: ignore[index]
    assert user["metadata"]["role"] == "builder"  # type: ignore[index]
    # The chat has no password sign-in of its own.
    form = {"username": "ada", "password": PASSWORD}
    assert browser.post("/login", data=form, headers={"origin": chat_app.url}).status_code >= 400


def test_a_session_an_admin_ends_at_the_hub_ends_in_the_chat(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada"))
    admin = hub.new_service("ops", admin=True)
    with httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {admin}"}) as ops:
        sessions = ops.get("/api/auth/sessions").json()
        (ada_session,) = [row for row in sessions if row["username"] == "ada"]
        assert ops.delete(f"/api/auth/sessions/{ada_session['id']}").status_code == 204

    refused = wait_until(
        lambda: (answer := browser.get("/user")).status_code == 401 and answer,
        timeout_s=15,
        what="the chat to notice the ended session",
    )
    assert "sign in again" in refused.json()["detail"]
    assert 'access_token=""' in refused.headers["set-cookie"]
    page = browser.get("/", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith(f"{hub.url}/login")


def test_a_chat_token_of_one_person_is_refused_beside_another_persons_hub_session(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada"))
    adas_chat_token = browser.cookies["access_token"]
    bens_session = _new_session(hub, "ben")
    browser.cookies.set("switchboard_session", bens_session)
    refused = browser.get("/user")
    assert refused.status_code == 401
    assert "access_token" not in browser.cookies  # dropped by the answer

    # Opening a page with Ada's token still there drops it and loads the page again.
    browser.cookies.set("access_token", adas_chat_token)
    page = browser.get("/", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/"
    assert 'access_token=""' in page.headers["set-cookie"]
    browser.cookies.delete("access_token")
    assert _sign_in_to_chat(browser, chat_app, bens_session)["identifier"] == person_key(hub, "ben")


def test_signing_out_of_the_chat_signs_out_of_the_hub(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    token = _new_session(hub, "ada")
    _sign_in_to_chat(browser, chat_app, token)
    with httpx.Client(base_url=hub.url, cookies={"switchboard_session": token}) as at_hub:
        assert at_hub.get("/api/auth/me").status_code == 200
        out = browser.post("/logout", json={}, headers={"origin": chat_app.url})
        assert out.status_code == 200, out.text
        assert at_hub.get("/api/auth/me").status_code == 401


def test_another_sites_page_cannot_change_anything_or_open_the_socket(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada"))
    forged = browser.request(
        "DELETE", "/project/thread", json={"threadId": "any"}, headers={"origin": EVIL}
    )
    assert forged.status_code == 403
    assert "not from the chat's own pages" in forged.text
    no_origin = browser.request("DELETE", "/project/thread", json={"threadId": "any"})
    assert no_origin.status_code == 403
    handshake = browser.get(
        "/ws/socket.io/?EIO=4&transport=websocket",
        headers={
            "origin": EVIL,
            "connection": "Upgrade",
            "upgrade": "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert handshake.status_code == 403


def test_a_re_created_username_does_not_inherit_the_conversations(
    hub: RunningHub, chat_app: ChatApp, browser: httpx.Client
) -> None:
    first = _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada"))
    thread_id = str(uuid.uuid4())
    (chat_user,) = chat_app.query("SELECT id FROM users WHERE identifier = ?", first["identifier"])
    chat_app.execute(
        'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier") '
        "VALUES (?, ?, ?, ?, ?)",
        *(thread_id, "2026-12-01T10:00:00Z", "Ada's pay", chat_user["id"], first["identifier"]),
    )
    listing = {"pagination": {"first": 20, "cursor": None}, "filter": {}}
    threads = browser.post("/project/threads", json=listing, headers={"origin": chat_app.url})
    assert [thread["id"] for thread in threads.json()["data"]] == [thread_id]

    # Ada leaves; later someone else gets the name "ada".
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        assert delete_user(session=session, username="ada")
    browser.cookies.clear()
    second = _sign_in_to_chat(browser, chat_app, _new_session(hub, "ada"))

    assert second["identifier"] != first["identifier"]
    threads = browser.post("/project/threads", json=listing, headers={"origin": chat_app.url})
    assert threads.json()["data"] == []
    assert browser.get(f"/project/thread/{thread_id}").status_code in (401, 403, 404)
