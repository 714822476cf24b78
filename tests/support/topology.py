"""Two hub replicas, two chat replicas and nginx in front, started by the code
`switchboard run --replicas 2` uses, on a fresh PostgreSQL database and this machine's Redis."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from hub.child_processes import Child, stop_children
from hub.core.config import Settings
from hub.core.db import get_engine, migrate
from hub.core.roles import Role
from hub.replicas import Topology, start_chat_replicas, start_hub_replicas
from hub.services.users import create_user
from tests.conftest import APP_TOKEN, RunningHub, write_catalog
from tests.support.servers import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class Running:
    settings: Settings
    topology: Topology
    children: list[Child]

    def child(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    @property
    def hub(self) -> RunningHub:
        """The hub as one, at the proxy's address."""
        return RunningHub(url=self.settings.hub_url, settings=self.settings, app_token=APP_TOKEN)


@contextmanager
def running_topology(
    tmp_path: Path,
    database_url: str,
    upstream_url: str,
    replicas: int = 2,
    chat: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """The proxy at settings.hub_url and settings.app_public_url, the replicas behind it
    (with `chat` False, only the hub's); `extra_env` adds settings of every replica."""
    migrate(database_url)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SWITCHBOARD_", "CHAINLIT_")) and key != "DATABASE_URL"
    }
    hub_port, app_port = free_port(), free_port()
    env.update(
        SWITCHBOARD_ENVIRONMENT="test",
        SWITCHBOARD_DATA_DIR=str(tmp_path / "data"),
        SWITCHBOARD_DATABASE_URL=database_url,
        SWITCHBOARD_CATALOG_PATH=str(write_catalog(tmp_path / "models.yaml", upstream_url)),
        SWITCHBOARD_APP_SERVICE_TOKEN=APP_TOKEN,
        SWITCHBOARD_REDIS_URL=REDIS_URL,
        SWITCHBOARD_REDIS_PREFIX=f"test-{uuid.uuid4().hex[:8]}:",
        SWITCHBOARD_HUB_PORT=str(hub_port),
        SWITCHBOARD_APP_PORT=str(app_port),
        SWITCHBOARD_USAGE_FLUSH_INTERVAL_S="0.05",
        SB_TEST_PROVIDER_KEY="sk-test-provider-key",
    )
    env.update(extra_env or {})
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=REDIS_URL,
        hub_port=hub_port,
        app_port=app_port,
    )
    topology = Topology(
        hub_host="127.0.0.1",
        hub_ports=tuple(free_port() for _ in range(replicas)),
        chat_host="127.0.0.1",
        chat_ports=tuple(free_port() for _ in range(replicas)),
    )
    children: list[Child] = []
    try:
        start_hub_replicas(children, topology, settings, env, tmp_path / "proxy")
        if chat:
            start_chat_replicas(children, topology, settings, env)
        yield Running(settings, topology, children)
    finally:
        stop_children(children, wait_s=15)


def add_person(database_url: str, username: str, password: str) -> None:
    with Session(get_engine(database_url)) as session:
        create_user(
            session=session,
            username=username,
            password=password,
            display_name=username.title(),
            role=Role.builder,
        )
