"""Two hub processes on one database (a SQLite file, then PostgreSQL): a change of production
made through either is served by the other within a second, and by the one that made it from
its very next call."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from hub.core.db import get_engine, migrate
from hub.models.service import ServiceCreate
from hub.services.service_accounts import create_service
from tests.conftest import APP_TOKEN, write_catalog
from tests.support.gateway import hub_processes
from tests.support.prompts import rendered
from tests.support.upstream import ScriptedUpstream

# The acceptance's bound: from the change to the first call the other process serves with it.
PROPAGATION_S = 1.0
NAME = "release-notes"
# Both versions take the same variables, so the same call is valid whichever is served.
V1 = [{"role": "user", "content": "Write release notes for {{product}}: {{changes}}"}]
V2 = [{"role": "user", "content": "Write cheerful release notes for {{product}}: {{changes}}"}]
VALUES = {"product": "Atlas", "changes": "faster search"}


SERVED = {1: rendered(V1, **VALUES), 2: rendered(V2, **VALUES)}


def _service(url: str, name: str) -> str:
    with Session(get_engine(url)) as session:
        _, token = create_service(
            session=session, service_in=ServiceCreate(name=name, team="alpha")
        )
    return token


@dataclass
class Hub:
    """One hub process: its builder (team alpha's service, which manages the prompt) and a
    caller (another of alpha's services, which calls the prompt by name)."""

    builder: httpx.Client
    caller: httpx.Client


@dataclass
class Replicas:
    a: Hub
    b: Hub
    upstream: ScriptedUpstream

    def served(self, hub: Hub) -> int:
        """Call the prompt through `hub`; which version's messages reached the upstream."""
        answer = hub.caller.post(f"/v1/prompts/{NAME}/completions", json={"variables": VALUES})
        assert answer.status_code == 200, answer.text
        sent = self.upstream.requests[-1]["messages"]
        return next(number for number, messages in SERVED.items() if messages == sent)

    def first_served_after(self, hub: Hub, version: int, changed_at: float) -> float:
        """Call through `hub` until it serves `version` (at most PROPAGATION_S after
        `changed_at`); the seconds from `changed_at` to that answer."""
        while self.served(hub) != version:
            waited = time.monotonic() - changed_at
            assert waited <= PROPAGATION_S, f"still not v{version} {waited:.2f} s after the change"
        return time.monotonic() - changed_at


@pytest.fixture
def replicas(
    tmp_path: Path,
    database_url: str,
    upstream: ScriptedUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Replicas]:
    # The processes keep breakers and limits in their own memory.
    monkeypatch.delenv("REDIS_URL", raising=False)
    upstream.script(reply="Notes.")
    # Migrated once here, so the two processes do not race to migrate at start.
    migrate(database_url)
    builder, caller = _service(database_url, "alpha-builder"), _service(database_url, "notes-bot")
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_CATALOG_PATH": str(write_catalog(tmp_path / "models.yaml", upstream.url)),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SB_TEST_PROVIDER_KEY": "sk-test-provider-key",
    }
    with hub_processes(env, tmp_path, 2) as (url_a, url_b):
        clients = [
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for url in (url_a, url_b)
            for token in (builder, caller)
        ]
        try:
            yield Replicas(Hub(*clients[:2]), Hub(*clients[2:]), upstream)
        finally:
            for client in clients:
                client.close()


def test_production_changed_through_one_process_is_served_by_the_other_within_a_second(
    replicas: Replicas,
) -> None:
    a, b = replicas.a, replicas.b
    made = a.builder.post(
        "/api/prompts", json={"name": NAME, "messages": V1, "model": "test-model"}
    )
    assert made.status_code == 201, made.text
    added = a.builder.post(
        f"/api/prompts/{NAME}/versions", json={"messages": V2, "model": "test-model"}
    )
    assert added.status_code == 201, added.text
    # Both processes have served v1, so whatever they keep of it is in place.
    assert [replicas.served(a), replicas.served(b)] == [1, 1]

    changed_at = time.monotonic()
    moved = a.builder.post(f"/api/prompts/{NAME}/production", json={"version": 2})
    assert moved.status_code == 200, moved.text
    assert replicas.served(a) == 2
    waited = replicas.first_served_after(b, 2, changed_at)
    assert waited <= PROPAGATION_S
    assert [replicas.served(b) for _ in range(3)] == [2, 2, 2]

    changed_at = time.monotonic()
    rolled = b.builder.post(f"/api/prompts/{NAME}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["production_version"] == 1
    assert replicas.served(b) == 1
    waited = replicas.first_served_after(a, 1, changed_at)
    assert waited <= PROPAGATION_S
    assert [replicas.served(a) for _ in range(3)] == [1, 1, 1]
