"""Local passwords and sessions over real HTTP: who may check a password, how fast one can
guess, and an admin ending someone's session."""

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlmodel import Session

from hub.core.db import get_engine, migrate
from hub.core.roles import Role
from hub.main import create_app
from hub.services.users import authenticate_password, create_user
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


def test_passwords_are_checked_only_on_the_hubs_sign_in_page(hub: RunningHub) -> None:
    """Not even the chat app can try passwords through the API, where the per-name and
    per-address limits of the sign-in page would not apply; the chat sends people to the page."""
    _people(hub)
    body = {"username": "ana", "password": "pw-ana-long"}
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for path in ("/api/auth/password", "/api/auth/session"):
            tried = client.post(
                path, json=body, headers={"Authorization": f"Bearer {hub.app_token}"}
            )
            assert tried.status_code in (404, 405), (path, tried.text)


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


def test_refusing_an_unknown_name_takes_about_as_long_as_refusing_a_wrong_password(
    tmp_path: Path,
) -> None:
    """Otherwise the time of a refusal tells a guesser which names have an account. For an
    unknown name the hub checks the password against a dummy hash, so both refusals cost one
    scrypt (tens of milliseconds); without that check the unknown name would be refused after
    one database lookup, in next to no time, far below half the wrong password's time. The
    calls are real and interleaved, and medians within a factor of two either way keep a busy
    machine from failing the test."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    with Session(get_engine(url)) as session:
        create_user(session=session, username="ana", password="pw-ana-long")
        spent: dict[str, list[float]] = {"ana": [], "nobody-by-this-name": []}
        for _ in range(9):
            for username, times in spent.items():
                start = time.perf_counter()
                refused = authenticate_password(
                    session=session, username=username, password="a wrong guess"
                )
                times.append(time.perf_counter() - start)
                assert refused is None
    known = statistics.median(spent["ana"])
    unknown = statistics.median(spent["nobody-by-this-name"])
    assert known / 2 <= unknown <= known * 2, (known, unknown)
