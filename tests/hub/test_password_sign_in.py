"""Local passwords and sessions over real HTTP: who may check a password, how fast one can
guess, and an admin ending someone's session."""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlmodel import Session

from hub.core.db import get_engine
from hub.core.roles import Role
from hub.main import create_app
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.servers import ThreadedServer


def _people(hub: RunningHub) -> None:
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username="ana", password="pw-ana-long", role=Role.member)
        create_user(session=session, username="root", password="pw-root-long", role=Role.admin)


@contextmanager
def _signed_in(hub: RunningHub, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, timeout=30, headers={"origin": hub.url}) as client:
        response = client.post("/login", data={"username": name, "password": f"pw-{name}-long"})
        assert response.status_code == 303, response.text
        yield client


def test_only_the_chat_app_may_ask_the_hub_to_check_a_password(hub: RunningHub) -> None:
    _people(hub)
    other = hub.new_service("guesser", team="growth")
    body = {"username": "ana", "password": "pw-ana-long"}
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        refused = client.post(
            "/api/auth/password", json=body, headers={"Authorization": f"Bearer {other}"}
        )
        assert refused.status_code == 403, refused.text
        assert "Only the chat app" in refused.json()["detail"]
        checked = client.post(
            "/api/auth/password", json=body, headers={"Authorization": f"Bearer {hub.app_token}"}
        )
        assert checked.status_code == 200, checked.text
        assert (checked.json()["username"], checked.json()["role"]) == ("ana", "member")


def test_password_guesses_for_one_name_are_stopped_after_five_failures(hub: RunningHub) -> None:
    _people(hub)
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        statuses = [
            client.post("/login", data={"username": "ana", "password": f"guess-{n}"}).status_code
            for n in range(5)
        ]
        assert statuses == [401] * 5
        blocked = client.post("/login", data={"username": "ana", "password": "pw-ana-long"})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in blocked.text
        # Another person's name is not blocked by Ana's failures.
        other = client.post("/login", data={"username": "root", "password": "pw-root-long"})
        assert other.status_code == 303


def test_an_admin_ends_a_persons_session_and_the_cookie_stops_working(hub: RunningHub) -> None:
    _people(hub)
    with _signed_in(hub, "ana") as ana, _signed_in(hub, "root") as root:
        assert ana.get("/api/auth/me").json()["name"] == "ana"
        assert ana.get("/api/auth/sessions").status_code == 403
        sessions = root.get("/api/auth/sessions").json()
        assert sorted(row["username"] for row in sessions) == ["ana", "root"]
        anas = next(row["id"] for row in sessions if row["username"] == "ana")
        assert root.delete(f"/api/auth/sessions/{anas}").status_code == 204
        assert ana.get("/api/auth/me").status_code == 401
        assert ana.get("/servers", follow_redirects=False).status_code == 303
        assert root.get("/api/auth/me").json()["name"] == "root"


def test_password_sign_in_is_off_in_production_unless_turned_on(hub: RunningHub) -> None:
    _people(hub)
    settings = hub.settings.model_copy(update={"password_sign_in": False})
    with ThreadedServer(create_app(settings)) as strict, httpx.Client(timeout=30) as client:
        form = client.get(f"{strict.base_url}/login")
        assert 'name="password"' not in form.text
        refused = client.post(
            f"{strict.base_url}/login", data={"username": "ana", "password": "pw-ana-long"}
        )
        assert refused.status_code == 403
        assert "Password sign-in is off" in refused.text
        from_chat = client.post(
            f"{strict.base_url}/api/auth/password",
            json={"username": "ana", "password": "pw-ana-long"},
            headers={"Authorization": f"Bearer {hub.app_token}"},
        )
        assert from_chat.status_code == 403
