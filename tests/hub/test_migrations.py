"""Migrations over data written before them, on SQLite and on this machine's PostgreSQL."""

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlmodel import Session, select

from hub.api.deps import service_actor, user_actor
from hub.core.db import MIGRATIONS_DIR, get_engine, migrate
from hub.models.agent import Agent
from hub.models.service import Service
from hub.models.user import User
from hub.services import agents
from hub.services.service_accounts import ServiceIdentity
from tests.conftest import _postgres_database

WHEN = "2026-11-30 12:00:00"


def _rows_from_before(connection: Connection) -> None:
    """People, services, agents and traces as revision 0007 stored them: owners by name only.
    `billing-bot` is both a person and a service; `gone` is neither any more."""
    for name in ("ana", "billing-bot"):
        connection.execute(
            text(
                "INSERT INTO hub_user (username, display_name, team, created_at) "
                "VALUES (:name, :name, 'general', :when)"
            ),
            {"name": name, "when": WHEN},
        )
    for name in ("billing-bot", "ops-bot"):
        connection.execute(
            text(
                "INSERT INTO service (name, team, is_admin, token_hash, disabled, created_at) "
                "VALUES (:name, 'ops', :no, :hash, :no, :when)"
            ),
            {"name": name, "no": False, "hash": f"hash-of-{name}", "when": WHEN},
        )
    for slug, owner in (("notes", "ana"), ("invoices", "billing-bot"), ("deploys", "ops-bot")):
        connection.execute(
            text(
                "INSERT INTO agent (slug, name, description, owner, team, visibility, "
                "instructions, model, mcp_servers, allowed_tools, starters, max_steps, "
                "max_tokens, timeout_s, created_at, updated_at) VALUES (:slug, :slug, '', "
                ":owner, 'ops', 'everyone', '', 'test-model', '[]', '{}', '[]', 8, 1024, 120, "
                ":when, :when)"
            ),
            {"slug": slug, "owner": owner, "when": WHEN},
        )
    # Ana's conversation in the chat, which knew her by her name.
    connection.execute(
        text(
            'INSERT INTO users (id, identifier, metadata, "createdAt") '
            "VALUES ('chat-ana', 'ana', '{}', :when)"
        ),
        {"when": WHEN},
    )
    connection.execute(
        text(
            'INSERT INTO threads (id, "createdAt", name, "userId", "userIdentifier") '
            "VALUES ('thread-1', :when, 'Ana asks', 'chat-ana', 'ana')"
        ),
        {"when": WHEN},
    )
    for run_id, owner, runner in (
        ("run-1", "ops-bot", "ana"),
        ("run-2", "ana", "billing-bot"),
        ("run-3", "gone", "gone"),
    ):
        connection.execute(
            text(
                'INSERT INTO trace_run (id, agent_slug, agent_owner, "user", started_at, status, '
                "steps, input_tokens, output_tokens, cost_usd) VALUES (:id, 'notes', :owner, "
                ":runner, :when, 'ok', 0, 0, 0, 0)"
            ),
            {"id": run_id, "owner": owner, "runner": runner, "when": WHEN},
        )


def test_owners_by_name_become_kind_and_id_and_a_name_both_hold_goes_to_the_person(
    database_url: str,
) -> None:
    migrate(database_url, revision="0007")
    engine = get_engine(database_url)
    with engine.begin() as connection:
        _rows_from_before(connection)

    migrate(database_url)

    with engine.connect() as connection:
        keys = {
            username: key
            for username, key in connection.execute(text("SELECT username, key FROM hub_user"))
        }
        service_ids = {
            name: str(service_id)
            for service_id, name in connection.execute(text("SELECT id, name FROM service"))
        }
        agent_owners = {
            slug: (kind, owner_id)
            for slug, kind, owner_id in connection.execute(
                text("SELECT slug, owner_kind, owner_id FROM agent")
            )
        }
        chat_people = connection.execute(text("SELECT id, identifier FROM users")).all()
        threads = connection.execute(text('SELECT id, "userIdentifier" FROM threads')).all()
        runs = {
            run_id: ((owner_kind, owner_id), (user_kind, user_id))
            for run_id, owner_kind, owner_id, user_kind, user_id in connection.execute(
                text(
                    "SELECT id, agent_owner_kind, agent_owner_id, user_kind, user_id FROM trace_run"
                )
            )
        }
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in keys.values())
    assert len(set(keys.values())) == 2
    ana, person_bot = ("user", keys["ana"]), ("user", keys["billing-bot"])
    ops_bot, nobody = ("service", service_ids["ops-bot"]), ("user", "")
    assert [tuple(row) for row in chat_people] == [("chat-ana", keys["ana"])]
    assert [tuple(row) for row in threads] == [("thread-1", keys["ana"])]
    assert agent_owners == {"notes": ana, "invoices": person_bot, "deploys": ops_bot}
    assert runs == {
        "run-1": (ops_bot, ana),
        "run-2": (ana, person_bot),
        "run-3": (nobody, nobody),
    }

    with Session(engine) as session:
        invoices = session.exec(select(Agent).where(Agent.slug == "invoices")).one()
        person = session.exec(select(User).where(User.username == "billing-bot")).one()
        service = session.exec(select(Service).where(Service.name == "billing-bot")).one()
        assert service.id is not None
        service_bot = service_actor(
            ServiceIdentity(service.id, service.name, service.team, service.is_admin)
        )
    assert agents.can_edit(invoices, user_actor(person))
    assert not agents.can_edit(invoices, service_bot)


def test_feedback_goes_to_the_agent_now_under_its_slug_only_if_given_since_it_was_made(
    database_url: str,
) -> None:
    """`notes` was deleted and made again at noon: the morning's feedback was on the old one."""
    migrate(database_url, revision="0011")
    engine = get_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agent (slug, name, description, owner, owner_kind, owner_id, team, "
                "visibility, instructions, model, mcp_servers, allowed_tools, starters, "
                "max_steps, max_tokens, timeout_s, created_at, updated_at) VALUES ('notes', "
                "'notes', '', 'ana', 'user', 'k-ana', 'ops', 'everyone', '', 'test-model', "
                "'[]', '{}', '[]', 8, 1024, 120, :when, :when)"
            ),
            {"when": WHEN},
        )
        for message, slug, when in (
            ("m-morning", "notes", "2026-11-30 09:00:00"),
            ("m-afternoon", "notes", "2026-11-30 15:00:00"),
            ("m-model", None, "2026-11-30 15:00:00"),
        ):
            connection.execute(
                text(
                    "INSERT INTO feedback (person_kind, person_id, person_name, "
                    "conversation_id, message_id, value, comment, model, agent_slug, "
                    "created_at, updated_at) VALUES ('user', 'k-bo', 'bo', 't-1', :message, 1, "
                    "'', 'test-model', :slug, :when, :when)"
                ),
                {"message": message, "slug": slug, "when": when},
            )

    migrate(database_url)

    with engine.connect() as connection:
        (agent_id,) = connection.execute(text("SELECT id FROM agent")).one()
        rows = connection.execute(text("SELECT message_id, agent_id FROM feedback"))
        credited = {message: agent for message, agent in rows}
    assert credited == {"m-morning": None, "m-afternoon": agent_id, "m-model": None}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


_MIGRATE_AT = """
import sys, time
from hub.core.db import migrate
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate(sys.argv[1])
"""


@pytest.mark.postgres
def test_replicas_starting_together_on_an_empty_postgres_database_all_migrate_it(
    tmp_path: Path, postgres_url: str
) -> None:
    """Every hub replica migrates as it starts: three at the same moment all succeed."""
    start_at = time.time() + 10  # once each process has imported the hub
    logs = [tmp_path / f"migrate-{n}.log" for n in range(3)]
    processes = []
    for log in logs:
        with log.open("wb") as out:
            command = [sys.executable, "-c", _MIGRATE_AT, postgres_url, str(start_at)]
            processes.append(subprocess.Popen(command, stderr=out))
    codes = [process.wait(timeout=120) for process in processes]
    assert codes == [0, 0, 0], [log.read_text()[-2000:] for log in logs]
    with get_engine(postgres_url).connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [version for (version,) in versions] == list(
        ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    )
