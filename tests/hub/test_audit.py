"""The audit log over real HTTP, on SQLite and PostgreSQL: every change leaves one event with
who, what, when and on what; admins filter them; nothing, not even SQL, changes one."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.cli import cli
from hub.core.config import Settings
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.main import create_app
from hub.models.audit import AuditEvent
from hub.models.service import Service, utcnow
from hub.models.user import User
from hub.services.audit import record_event
from hub.services.users import create_user
from hub.services.web_sessions import list_web_sessions
from tests.conftest import RunningHub
from tests.support.identity_provider import CLIENT_ID, CLIENT_SECRET, ScriptedIdentityProvider
from tests.support.mcp_server import McpTestServer
from tests.support.servers import ThreadedServer

LOOPBACK = "127.0.0.1"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


class Seen(NamedTuple):
    """One event as the tests compare it: who, what, on what, from where."""

    actor_kind: str
    actor_id: str
    actor_name: str
    action: str
    object_kind: str
    object_id: str
    address: str | None


@dataclass
class People:
    """People with passwords (`pw-<name>`), and their keys."""

    hub: RunningHub
    keys: dict[str, str]

    @contextmanager
    def signed_in(self, name: str) -> Iterator[httpx.Client]:
        """A browser signed in with the password form, sending the hub's `Origin` as its
        pages do."""
        with httpx.Client(base_url=self.hub.url, headers={"Origin": self.hub.url}, timeout=30) as b:
            response = b.post("/login", data={"username": name, "password": f"pw-{name}"})
            assert response.status_code == 303, response.text
            yield b

    def sign_in_event(self, name: str) -> Seen:
        return self.by(name, "sign_in", "user", self.keys[name])

    def by(self, name: str, action: str, object_kind: str, object_id: str) -> Seen:
        return Seen("user", self.keys[name], name, action, object_kind, object_id, LOOPBACK)


def _engine(hub: RunningHub) -> Any:
    return get_engine(hub.settings.sqlalchemy_url)


@pytest.fixture
def people(hub: RunningHub) -> People:
    with Session(_engine(hub)) as session:
        keys = {
            name: create_user(
                session=session, username=name, password=f"pw-{name}", team=team, role=role
            ).key
            for name, team, role in [
                ("root", "platform", Role.admin),
                ("ada", "weather", Role.builder),
                ("cho", "weather", Role.member),
            ]
        }
    return People(hub=hub, keys=keys)


Switchboard = Callable[..., Any]


@pytest.fixture
def switchboard(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> Switchboard:
    """`switchboard ARGS...` on the hub's database."""
    monkeypatch.setattr("hub.cli.get_settings", lambda: hub.settings)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output

    return run


def _events(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    response = admin.get("/api/audit", params={"limit": 500, **filters})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _seen(event: dict[str, Any]) -> Seen:
    return Seen(*(event[field] for field in Seen._fields))


def _newest_session_of(hub: RunningHub, username: str) -> int:
    with Session(_engine(hub)) as session:
        return next(s.id for s in list_web_sessions(session=session) if s.username == username)


def _ok(response: httpx.Response, status: int = 200) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


def test_every_change_leaves_one_event_with_who_what_when_and_on_what(
    hub: RunningHub, people: People, switchboard: Switchboard
) -> None:
    start = utcnow()
    expected: list[Seen] = []
    with (
        McpTestServer() as weather,
        people.signed_in("root") as root,
        people.signed_in("ada") as ada,
    ):
        expected += [people.sign_in_event("root"), people.sign_in_event("ada")]
        ada_first_session = _newest_session_of(hub, "ada")
        with people.signed_in("ada"):
            ada_second_session = _newest_session_of(hub, "ada")
        expected.append(people.sign_in_event("ada"))

        # An MCP server through the API and the pages: registered, changed, disabled (page),
        # enabled (API), its new tools approved, deleted.
        server = {"slug": "weather", "name": "Weather", "team": "weather", "url": weather.url}
        _ok(ada.post("/api/mcp/servers", json=server), 201)
        _ok(ada.patch("/api/mcp/servers/weather", json={"description": "Office weather."}))
        _ok(ada.post("/servers/weather/disable"), 303)
        _ok(ada.post("/api/mcp/servers/weather/enable"))
        weather.redeploy("Weather, and a description that changed.")
        checked = _ok(ada.post("/api/mcp/servers/weather/check")).json()
        assert checked["status"] == "needs_review"
        approval = {"digest": checked["pending_digest"]}
        _ok(ada.post("/api/mcp/servers/weather/approve", json=approval))
        expected += [
            people.by("ada", f"mcp_server.{action}", "mcp_server", "weather")
            for action in ("registered", "changed", "disabled", "enabled", "approved")
        ]
        # A member may not disable it: refused, and nothing is recorded.
        with people.signed_in("cho") as cho:
            assert cho.post("/api/mcp/servers/weather/disable").status_code == 403
        expected.append(people.sign_in_event("cho"))

        # An agent: created, published twice (API, then page), v1 restored (page), deleted.
        agent = {"slug": "coat", "name": "Coat", "model": "test-model"}
        _ok(ada.post("/api/agents", json=agent), 201)
        _ok(ada.post("/api/agents/coat/publish"), 201)
        _ok(ada.patch("/api/agents/coat", json={"instructions": "Say which coat."}))
        _ok(ada.post("/agents/coat/publish"), 303)
        _ok(ada.post("/agents/coat/versions/1/restore"), 303)
        _ok(ada.delete("/api/agents/coat"), 204)
        _ok(ada.delete("/api/mcp/servers/weather"), 204)
        expected += [
            people.by("ada", action, "agent", "coat")
            for action in (
                "agent.created",
                "agent.published",
                "agent.published",
                "agent.restored",
                "agent.deleted",
            )
        ]
        expected.append(people.by("ada", "mcp_server.deleted", "mcp_server", "weather"))

        # An admin ends two of Ada's sessions: through the API and on the sessions page.
        _ok(root.delete(f"/api/auth/sessions/{ada_second_session}"), 204)
        _ok(root.post(f"/sessions/{ada_first_session}/revoke"), 303)
        expected += [
            people.by("root", "session.revoked", "web_session", str(session_id))
            for session_id in (ada_second_session, ada_first_session)
        ]

        # The admin command: a service and its limits, and Ada offboarded.
        switchboard("service", "create", "billing-api", "--team", "finance")
        switchboard("service", "limits", "billing-api", "--rpm", "600", "--budget-usd", "500")
        switchboard("user", "delete", "ada")
        with Session(_engine(hub)) as session:
            service = session.exec(select(Service).where(Service.name == "billing-api")).one()
        expected += [
            Seen("system", "", "system", "service.created", "service", str(service.id), None),
            Seen(
                "system", "", "system", "service.limits_changed", "service", str(service.id), None
            ),
            Seen("system", "", "system", "user.deleted", "user", people.keys["ada"], None),
        ]
        end = utcnow()

        events = list(reversed(_events(root)))  # oldest first

    assert [_seen(event) for event in events] == expected
    for event in events:
        assert start <= datetime.fromisoformat(event["at"]) <= end, event
    details = {(e["action"], e["object_id"]): e["details"] for e in events}
    assert [e["details"]["version"] for e in events if e["action"] == "agent.published"] == [1, 2]
    assert details["agent.restored", "coat"] == {"version": 1}
    assert details["mcp_server.changed", "weather"] == {"fields": ["description"]}
    assert details["mcp_server.disabled", "weather"] == {"was": "active"}
    assert details["service.limits_changed", str(service.id)] == {
        "name": "billing-api",
        "old": {"rpm": None, "tpm": None, "budget_usd": None},
        "new": {"rpm": 600, "tpm": None, "budget_usd": 500.0},
    }
    assert details["service.created", str(service.id)] == {
        "name": "billing-api",
        "team": "finance",
        "admin": False,
    }
    assert details["user.deleted", people.keys["ada"]] == {"username": "ada"}
    assert details["session.revoked", str(ada_first_session)]["username"] == "ada"
    sign_ins = [e["details"] for e in events if e["action"] == "sign_in"]
    assert sign_ins[0] == {"method": "password", "role": "admin", "teams": ["platform"]}


def test_an_oidc_sign_in_is_recorded_and_so_is_a_role_the_provider_changed(
    hub_settings: Settings, hub_port: int
) -> None:
    with ScriptedIdentityProvider(people={"dee-1": {"name": "Dee", "groups": []}}) as provider:
        provider.next_subject = "dee-1"
        settings = hub_settings.model_copy(
            update={
                "oidc_issuer": provider.url,
                "oidc_client_id": CLIENT_ID,
                "oidc_client_secret": CLIENT_SECRET,
            }
        )
        start = utcnow()
        with ThreadedServer(create_app(settings), port=hub_port) as hub:

            def sign_in() -> None:
                with httpx.Client(base_url=hub.base_url, timeout=30) as browser:
                    authorize = _ok(browser.get("/auth/oidc/start"), 303).headers["location"]
                    callback = browser.get(authorize)
                    assert callback.status_code == 302, callback.text
                    _ok(browser.get(callback.headers["location"]), 303)

            sign_in()  # a member of no team
            provider.people["dee-1"]["groups"] = ["switchboard-admins", "team-platform"]
            sign_in()  # an admin now: the role changes, then the sign-in
            sign_in()  # still an admin: no change
            end = utcnow()
        with Session(get_engine(settings.sqlalchemy_url)) as session:
            dee = session.exec(select(User).where(User.subject == "dee-1")).one()
            events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()

    sign_in_event = Seen("user", dee.key, dee.username, "sign_in", "user", dee.key, LOOPBACK)
    role_changed = Seen("system", "", "system", "role.changed", "user", dee.key, LOOPBACK)
    assert [_seen(event.model_dump()) for event in events] == [
        sign_in_event,
        role_changed,
        sign_in_event,
        sign_in_event,
    ]
    assert all(start <= event.at <= end for event in events)
    assert events[1].details == {"username": dee.username, "old": "member", "new": "admin"}
    assert [event.details["method"] for event in events if event.action == "sign_in"] == [
        "oidc"
    ] * 3
    assert [event.details["role"] for event in events if event.action == "sign_in"] == [
        "member",
        "admin",
        "admin",
    ]


@pytest.fixture
def history(hub: RunningHub) -> datetime:
    """Six events an hour apart, the newest an hour ago; returns the time of the oldest."""
    ada = ("user", "key-of-ada", "ada")
    bot = ("service", "7", "weather-bot")
    system = ("system", "", "system")
    first = utcnow().replace(microsecond=0) - timedelta(hours=6)
    rows = [
        (ada, "agent.created", "agent", "coat"),
        (ada, "agent.published", "agent", "coat"),
        (bot, "mcp_server.registered", "mcp_server", "weather"),
        (system, "service.created", "service", "3"),
        (bot, "agent.created", "agent", "umbrella"),
        (ada, "agent.deleted", "agent", "coat"),
    ]
    with Session(_engine(hub)) as session:
        for hour, ((kind, actor_id, name), action, object_kind, object_id) in enumerate(rows):
            session.add(
                AuditEvent(
                    at=first + timedelta(hours=hour),
                    actor_kind=kind,
                    actor_id=actor_id,
                    actor_name=name,
                    action=action,
                    object_kind=object_kind,
                    object_id=object_id,
                )
            )
        session.commit()
    return first


def _picked(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["action"], event["object_id"]) for event in events]


def test_admins_filter_events_by_who_what_and_when_newest_first(
    hub: RunningHub, people: People, history: datetime
) -> None:
    with people.signed_in("root") as root:
        everything = _picked(_events(root))
        assert everything[0] == ("sign_in", people.keys["root"])
        assert everything[1:] == [
            ("agent.deleted", "coat"),
            ("agent.created", "umbrella"),
            ("service.created", "3"),
            ("mcp_server.registered", "weather"),
            ("agent.published", "coat"),
            ("agent.created", "coat"),
        ]
        by_name = _picked(_events(root, actor="ada"))
        assert by_name == [
            ("agent.deleted", "coat"),
            ("agent.published", "coat"),
            ("agent.created", "coat"),
        ]
        assert _events(root, actor="key-of-ada") == _events(root, actor="ada")
        assert _picked(_events(root, actor="7")) == _picked(_events(root, actor="weather-bot"))
        assert _picked(_events(root, actor="system")) == [("service.created", "3")]
        assert _picked(_events(root, action="agent.created")) == [
            ("agent.created", "umbrella"),
            ("agent.created", "coat"),
        ]
        assert _picked(_events(root, action="agent.*")) == [
            ("agent.deleted", "coat"),
            ("agent.created", "umbrella"),
            ("agent.published", "coat"),
            ("agent.created", "coat"),
        ]
        between = {
            "since": (history + timedelta(hours=1)).isoformat(),
            "until": (history + timedelta(hours=3)).isoformat(),
        }
        assert _picked(_events(root, **between)) == [
            ("service.created", "3"),
            ("mcp_server.registered", "weather"),
            ("agent.published", "coat"),
        ]
        # A time without a zone is UTC.
        naive = (history + timedelta(hours=4)).replace(tzinfo=None).isoformat()
        assert _picked(_events(root, until=naive, action="agent.*")) == [
            ("agent.created", "umbrella"),
            ("agent.published", "coat"),
            ("agent.created", "coat"),
        ]
        paged = [_picked(_events(root, actor="ada", limit=1, offset=n)) for n in range(4)]
        assert paged == [
            [("agent.deleted", "coat")],
            [("agent.published", "coat")],
            [("agent.created", "coat")],
            [],
        ]

        # The page shows the same, with the filter form filled in.
        shown = _ok(root.get("/audit", params={"actor": "weather-bot", "action": "agent.*"}))
        assert "umbrella" in shown.text and "coat" not in shown.text
        assert 'value="weather-bot"' in shown.text


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"action": "DROP TABLE audit_event"}, "mcp_server.*"),
        ({"since": "last tuesday"}, "since"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "swap them"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_a_bad_filter_is_refused_with_what_to_fix(
    hub: RunningHub, people: People, filters: dict[str, str], message: str
) -> None:
    with people.signed_in("root") as root:
        api = root.get("/api/audit", params=filters)
        assert api.status_code == 422, api.text
        assert message in api.json()["detail"]
        page = root.get("/audit", params=filters)
        assert page.status_code in (400, 422), page.text
        assert message in page.text


def test_no_route_changes_or_deletes_an_event(hub: RunningHub, people: People) -> None:
    with people.signed_in("root") as root:
        before = _events(root)
        event_id = before[0]["id"]
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/api/audit", f"/api/audit/{event_id}", "/audit", f"/audit/{event_id}"):
                response = root.request(method, path, json={"action": "nothing.happened"})
                assert response.status_code in (404, 405), f"{method} {path}: {response.text}"
        assert _events(root) == before


def test_the_database_refuses_to_update_or_delete_an_event(hub: RunningHub) -> None:
    engine = _engine(hub)
    with Session(engine) as session:
        record_event(
            session=session,
            actor=None,
            action="service.created",
            object_kind="service",
            object_id="1",
        )
        session.commit()
    for statement in (
        "UPDATE audit_event SET action = 'nothing.happened'",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with Session(engine) as session:
        events = session.exec(select(AuditEvent)).all()
    assert [(event.action, event.object_id) for event in events] == [("service.created", "1")]
