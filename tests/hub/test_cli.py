"""The `switchboard` admin command against a running hub's database."""

from collections.abc import Callable

import httpx
import pytest
from click.testing import Result
from sqlmodel import Session
from typer.testing import CliRunner

from hub.cli import cli
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub
from tests.support.owners import as_person, publish_agent, traced_run

Switchboard = Callable[..., Result]
PASSWORD = "pw-offboarding"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


@pytest.fixture
def switchboard(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> Switchboard:
    """`switchboard ARGS...` on the hub's database."""
    monkeypatch.setattr("hub.cli.get_settings", lambda: hub.settings)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def _new_person(hub: RunningHub, username: str, role: Role) -> str:
    """A person with a password; their key."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        user = create_user(session=session, username=username, password=PASSWORD, role=role)
        return user.key


def test_a_person_deleted_and_created_again_with_the_same_name_inherits_nothing(
    hub: RunningHub, switchboard: Switchboard
) -> None:
    _new_person(hub, "root", Role.admin)
    # Made last, so on SQLite the person created again gets the same row id.
    old_key = _new_person(hub, "dana", Role.builder)
    with as_person(hub, "dana") as dana:
        publish_agent(dana, "notes")
        dana.patch("/api/agents/notes", json={"instructions": "dana's draft"})
        run_id = traced_run(dana, slug="notes", user="dana", hub=hub)
    with httpx.Client(base_url=hub.url, timeout=30) as signed_in:
        signed_in.post("/login", data={"username": "dana", "password": PASSWORD})
        assert signed_in.get("/api/auth/me").status_code == 200

        deleted = switchboard("user", "delete", "dana")
        assert deleted.exit_code == 0, deleted.output
        assert signed_in.get("/api/auth/me").status_code == 401

    assert _new_person(hub, "dana", Role.builder) != old_key
    with as_person(hub, "dana") as newcomer, as_person(hub, "root") as admin:
        assert newcomer.get("/api/agents/notes/draft-run-spec").status_code == 403
        assert newcomer.patch("/api/agents/notes", json={"name": "Mine"}).status_code == 403
        assert newcomer.post("/api/agents/notes/publish").status_code == 403
        assert newcomer.get("/api/agents", params={"mine": True}).json() == []
        assert newcomer.get(f"/api/traces/{run_id}").status_code == 404
        assert newcomer.get("/api/traces").json() == []

        assert admin.get("/api/agents/notes").json()["draft"]["instructions"] == "dana's draft"
        assert admin.get(f"/api/traces/{run_id}").status_code == 200
        assert [run["id"] for run in admin.get("/api/traces").json()] == [run_id]


def test_deleting_someone_unknown_says_so(switchboard: Switchboard) -> None:
    result = switchboard("user", "delete", "nobody")
    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output
