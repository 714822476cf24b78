"""Shared fixtures: a scripted upstream, databases, and a hub on a real port."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlmodel import Session

from hub.core.config import Settings
from hub.core.db import dispose_engines, get_engine, migrate
from hub.main import create_app
from hub.models.service import ServiceCreate
from hub.services.service_accounts import create_service
from mcp_servers.bigquery.emulator import EmulatorError, EmulatorProcess
from tests.support.servers import ThreadedServer, free_port, served_module
from tests.support.upstream import ScriptedUpstream

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
APP_TOKEN = "sb-test-app-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _close_database_connections() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as server:
        yield server


def _postgres_database() -> Iterator[str]:
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable ({exc}); start it first")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        dispose_engines()
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then this machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        yield from _postgres_database()


def write_catalog(path: Path, upstream_url: str, **extra_models: str) -> Path:
    models = [
        {
            "name": "test-model",
            "description": "The scripted upstream.",
            "input_usd_per_million": 2.0,
            "output_usd_per_million": 8.0,
            "deployments": [
                {
                    "provider": "openai-compatible",
                    "base_url": upstream_url,
                    "region": "local",
                    "model": "scripted-model",
                    "api_key_env": "SB_TEST_PROVIDER_KEY",
                }
            ],
        }
    ]
    for name, url in extra_models.items():
        models.append(
            {
                "name": name,
                "deployments": [{"provider": "openai-compatible", "base_url": url, "model": name}],
            }
        )
    path.write_text(yaml.safe_dump({"models": models}))
    return path


@pytest.fixture
def spare() -> Iterator[ScriptedUpstream]:
    """A second scripted upstream, for a model that another falls back to."""
    with ScriptedUpstream() as server:
        yield server


def with_spare_model(
    settings: Settings, tmp_path: Path, upstream: ScriptedUpstream, spare: ScriptedUpstream
) -> Settings:
    """`settings` with the test catalog in which "test-model" falls back to "spare-model"."""
    catalog = write_catalog(tmp_path / "models.yaml", upstream.url, **{"spare-model": spare.url})
    models = yaml.safe_load(catalog.read_text())
    models["models"][0]["fallbacks"] = ["spare-model"]
    catalog.write_text(yaml.safe_dump(models))
    return settings.model_copy(update={"catalog_path": catalog, "retry_backoff_s": 0.01})


@dataclass
class RunningHub:
    url: str
    settings: Settings
    app_token: str

    def new_service(self, name: str, team: str = "testers", admin: bool = False) -> str:
        migrate(self.settings.sqlalchemy_url)
        with Session(get_engine(self.settings.sqlalchemy_url)) as session:
            _, token = create_service(
                session=session, service_in=ServiceCreate(name=name, team=team, is_admin=admin)
            )
        return token


@pytest.fixture
def hub_database_url(tmp_path: Path) -> str:
    """The hub's database in a test; a module overrides this to run on `database_url`."""
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def hub_port() -> int:
    return free_port()


@pytest.fixture
def hub_settings(
    tmp_path: Path, upstream: ScriptedUpstream, hub_database_url: str, hub_port: int
) -> Settings:
    return Settings(
        environment="test",
        public_hub_url=f"http://127.0.0.1:{hub_port}",
        data_dir=tmp_path / "data",
        database_url=hub_database_url,
        catalog_path=write_catalog(tmp_path / "models.yaml", upstream.url),
        app_service_token=APP_TOKEN,
        usage_flush_interval_s=0.05,
        mcp_check_interval_s=0.5,
        # Tests press "check now" at will; tests/hub/test_mcp_changes.py sets the limit.
        mcp_check_now_interval_s=0.0,
        mcp_discovery_timeout_s=5.0,
    )


@pytest.fixture
def hub(
    hub_settings: Settings, hub_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningHub]:
    monkeypatch.setenv("SB_TEST_PROVIDER_KEY", "sk-test-provider-key")
    with ThreadedServer(create_app(hub_settings), port=hub_port) as server:
        yield RunningHub(url=server.base_url, settings=hub_settings, app_token=APP_TOKEN)


@pytest.fixture
def served_handbook(tmp_path: Path) -> Iterator[str]:
    """`python -m mcp_servers.handbook` on a free loopback port; yields its MCP endpoint."""
    with served_module("mcp_servers.handbook", tmp_path / "handbook.log") as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """`python -m mcp_servers.bigquery.emulator` on a free port, seeded for today (UTC).

    Started once per session (a few seconds). It has `url`, `project`, `dataset`, `today`,
    `seed`, `settings` (a `WarehouseSettings` pointing at it) and `client()`, a new official
    `google.cloud.bigquery.Client` for it. Tests only read the `dataset`; a test that writes
    uses a dataset of its own and drops it.
    """
    data_dir: Path = tmp_path_factory.mktemp("bigquery")
    log_path = data_dir / "emulator.log"
    with log_path.open("wb") as log:
        emulator = EmulatorProcess(port=free_port(), data_dir=data_dir, log=log)
        try:
            emulator.start(timeout_s=90)
        except EmulatorError as exc:
            pytest.fail(f"{exc}:\n{log_path.read_text()}")
        try:
            yield emulator
        finally:
            emulator.stop()
