"""Callers of a running hub for tests of who owns what: people as the chat app calls for them,
services with their own token, a person and a service that share a name, and agent runs
traced the way the chat app traces them (the run spec from the hub, the tracer sending the
trace to the hub with the chat app's token)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import httpx
from sqlalchemy import text
from sqlmodel import Session

from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from hub.core.db import get_engine
from hub.core.roles import Role
from hub.services.users import create_user
from tests.conftest import RunningHub

__all__ = [
    "as_person",
    "as_service",
    "chat_conversation",
    "namesakes",
    "owners_and_others",
    "page_clients",
    "publish_agent",
    "traced_run",
]


def as_person(hub: RunningHub, username: str) -> httpx.Client:
    """A client acting for a person through the chat app's token and X-Switchboard-User."""
    headers = {"Authorization": f"Bearer {hub.app_token}", "X-Switchboard-User": username}
    return httpx.Client(base_url=hub.url, headers=headers, timeout=30)


def as_service(hub: RunningHub, token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def chat_conversation(database_url: str, username: str, thread_id: str) -> None:
    """A conversation in the chat's tables (migration 0002) owned by `username`, by their key,
    as the chat stores one."""
    with get_engine(database_url).begin() as connection:
        key = connection.execute(
            text("SELECT key FROM hub_user WHERE username = :name"), {"name": username}
        ).scalar_one()
        connection.execute(
            text(
                'INSERT INTO users (id, identifier, metadata, "createdAt") '
                "SELECT :id, :key, '{}', '2026-12-01' "
                "WHERE NOT EXISTS (SELECT 1 FROM users WHERE identifier = :key)"
            ),
            {"id": f"chat-{username}", "key": key},
        )
        connection.execute(
            text(
                'INSERT INTO threads (id, name, "userId", "userIdentifier") '
                "SELECT :id, 'Pricing', id, :key FROM users WHERE identifier = :key"
            ),
            {"id": thread_id, "key": key},
        )


@contextmanager
def owners_and_others(hub: RunningHub) -> Iterator[dict[str, httpx.Client]]:
    """API clients of team alpha's builder `ada` and member `bob`, team beta's builder `cy`,
    the admin `root` (team ops), alpha's service `alpha-bot` (`service`), and nobody
    (`anon`)."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team, role in [
            ("ada", "alpha", Role.builder),
            ("bob", "alpha", Role.member),
            ("cy", "beta", Role.builder),
            ("root", "ops", Role.admin),
        ]:
            create_user(session=session, username=name, password=f"pw-{name}", team=team, role=role)
    clients = {name: as_person(hub, name) for name in ("ada", "bob", "cy", "root")}
    clients["service"] = as_service(hub, hub.new_service("alpha-bot", team="alpha"))
    clients["anon"] = httpx.Client(base_url=hub.url, timeout=30)
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


@contextmanager
def page_clients(
    hub: RunningHub, people: list[tuple[str, str, Role]]
) -> Iterator[Callable[[str], httpx.Client]]:
    """People (name, team, role) with the password `pw-<name>`, and a browser-like client
    signed in to the hub's pages as any of them."""
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        for name, team, role in people:
            create_user(session=session, username=name, password=f"pw-{name}", team=team, role=role)
    clients: list[httpx.Client] = []

    def client_for(username: str) -> httpx.Client:
        client = httpx.Client(base_url=hub.url, headers={"Origin": hub.url}, timeout=30)
        clients.append(client)
        signed_in = client.post("/login", data={"username": username, "password": f"pw-{username}"})
        assert signed_in.status_code == 303
        return client

    try:
        yield client_for
    finally:
        for client in clients:
            client.close()


def namesakes(hub: RunningHub, name: str, team: str) -> tuple[httpx.Client, httpx.Client]:
    """A service and a person (a builder) with the same name and team: (service, person)."""
    token = hub.new_service(name, team=team)
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        create_user(session=session, username=name, password="pw", team=team, role=Role.builder)
    return as_service(hub, token), as_person(hub, name)


def publish_agent(client: httpx.Client, slug: str) -> None:
    """An agent without tools, made and published by `client`'s caller, for everyone."""
    body = {"slug": slug, "name": slug.title(), "model": "test-model", "visibility": "everyone"}
    created = client.post("/api/agents", json=body)
    assert created.status_code == 201, created.text
    published = client.post(f"/api/agents/{slug}/publish")
    assert published.status_code == 201, published.text


async def _trace(hub: RunningHub, spec: AgentSpec, user: str) -> str:
    async with Tracer(hub.url, hub.app_token, flush_interval_s=60) as tracer:
        trace = tracer.start_run(spec=spec, user=user, conversation_id=None)
        trace.finish("ok")
    return trace.id


def traced_run(client: httpx.Client, *, slug: str, user: str, hub: RunningHub) -> str:
    """One finished run of `slug`'s live version by `client`'s caller (`user` is their name),
    traced from the run spec the hub gives that caller; the trace's id."""
    response = client.get(f"/api/agents/{slug}/live")
    assert response.status_code == 200, response.text
    return anyio.run(_trace, hub, AgentSpec.model_validate(response.json()), user)
