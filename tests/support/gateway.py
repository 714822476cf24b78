"""Gateway test helpers: catalogs of models with regions and fallbacks, settings with
millisecond backoff and cool-down, and hubs in processes of their own sharing Redis."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from sqlmodel import Session, select

from hub.core.config import Settings
from hub.core.db import get_engine, migrate
from hub.models.service import ServiceCreate
from hub.models.usage import UsageRecord
from hub.services.service_accounts import create_service, set_limits
from tests.support.servers import free_port, stop_process

__all__ = [
    "APP_TOKEN",
    "FAST",
    "REDIS_URL",
    "HubProcess",
    "Model",
    "RedisHubs",
    "ask",
    "gateway_settings",
    "hub_processes",
    "new_service",
    "redis_hubs",
    "started_hubs",
    "usage_rows",
    "write_models",
]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
APP_TOKEN = "sb-test-app-token"
# Settings that keep fault tests fast: backoff and cool-down in milliseconds.
FAST: dict[str, Any] = {
    "retry_attempts": 3,
    "retry_backoff_s": 0.01,
    "retry_backoff_max_s": 0.5,
    "request_deadline_s": 5.0,
    "upstream_connect_timeout_s": 1.0,
    "upstream_first_byte_timeout_s": 0.5,
    "breaker_failures": 3,
    "breaker_window_s": 10.0,
    "breaker_cooldown_s": 0.6,
}


@dataclass
class Model:
    name: str
    # One deployment per URL, in regions "a", "b", ... (the order they are tried in).
    urls: Sequence[str]
    fallbacks: Sequence[str] = ()
    prices: tuple[float, float] = (2.0, 8.0)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    # More fields of the catalog entry (media_urls, provider_options, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    def yaml(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_usd_per_million": self.prices[0],
            "output_usd_per_million": self.prices[1],
            "deployments": [
                {
                    "provider": "openai-compatible",
                    "base_url": url,
                    # Unique per test, so breaker state in a shared Redis never leaks over.
                    "region": f"{'abcdefgh'[i]}-{self.tag}",
                    "model": f"{self.name}-upstream",
                }
                for i, url in enumerate(self.urls)
            ],
            "fallbacks": list(self.fallbacks),
            **self.extra,
        }


def write_models(path: Path, *models: Model) -> Path:
    path.write_text(yaml.safe_dump({"models": [model.yaml() for model in models]}))
    return path


def gateway_settings(workdir: Path, *models: Model, **options: Any) -> Settings:
    """A hub's settings in `workdir` (a SQLite file) serving `models`; FAST unless `options`
    say otherwise."""
    return Settings(
        environment="test",
        data_dir=workdir,
        database_url=f"sqlite:///{workdir / 'hub.db'}",
        catalog_path=write_models(workdir / "models.yaml", *models),
        app_service_token=APP_TOKEN,
        usage_flush_interval_s=0.05,
        **{**FAST, **options},
    )


def ask(
    url: str,
    token: str,
    model: str,
    *,
    stream: bool = False,
    max_tokens: int | None = None,
    timeout: float = 30.0,
) -> httpx.Response:
    """One chat completion through the hub at `url`, read to its end."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
    }
    if stream:
        body["stream"] = True
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {token}"},
        timeout=timeout,
    )


@dataclass(frozen=True)
class HubProcess:
    url: str
    pid: int


@contextmanager
def hub_processes(
    env: dict[str, str], workdir: Path, count: int, log_level: str = "warning"
) -> Iterator[list[str]]:
    """`count` processes of `uvicorn hub.main:create_app`, started together; yields their
    base URLs once all answer. Each writes its log to `workdir/hub-<i>.log`."""
    with started_hubs(env, workdir, count, log_level) as hubs:
        yield [hub.url for hub in hubs]


@contextmanager
def started_hubs(
    env: dict[str, str], workdir: Path, count: int, log_level: str = "warning"
) -> Iterator[list[HubProcess]]:
    """As `hub_processes`, yielding each hub's URL and process id."""
    ports = [free_port() for _ in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            command = [
                *(sys.executable, "-m", "uvicorn", "--factory", "hub.main:create_app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", log_level),
            ]
            with (workdir / f"hub-{i}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=workdir,
                        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        # Generous: hubs starting together on a loaded machine import for a while.
        deadline = time.monotonic() + 60
        for i, (port, process) in enumerate(zip(ports, processes, strict=True)):
            while True:
                log = workdir / f"hub-{i}.log"
                if process.poll() is not None:
                    raise RuntimeError(f"a hub exited early:\n{log.read_text()}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a hub did not start:\n{log.read_text()}")
                time.sleep(0.05)
        yield [
            HubProcess(f"http://127.0.0.1:{port}", process.pid)
            for port, process in zip(ports, processes, strict=True)
        ]
    finally:
        for process in processes:
            stop_process(process)


def new_service(
    settings: Settings,
    name: str,
    *,
    team: str = "testers",
    admin: bool = False,
    rpm: int | None = None,
    tpm: int | None = None,
    monthly_budget_usd: float | None = None,
) -> str:
    """A service in the hub's database, with its limits; returns its token."""
    migrate(settings.sqlalchemy_url)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        _, token = create_service(
            session=session, service_in=ServiceCreate(name=name, team=team, is_admin=admin)
        )
        set_limits(
            session=session,
            name=name,
            rpm=rpm,
            tpm=tpm,
            monthly_budget_usd=monthly_budget_usd,
        )
    return token


@dataclass
class RedisHubs:
    a: str
    b: str
    # Points at the database the hubs share, for creating services.
    settings: Settings


@contextmanager
def redis_hubs(
    workdir: Path, models: Sequence[Model], options: dict[str, Any], processes: int = 2
) -> Iterator[RedisHubs]:
    """Hub processes on one database and one Redis (under a key prefix of their own, removed
    afterwards), with the given settings; `b` is `a` when there is one process."""
    prefix = f"switchboard-test-{uuid.uuid4().hex[:10]}:"
    settings = gateway_settings(
        workdir, *models, redis_url=REDIS_URL, redis_prefix=prefix, **options
    )
    migrate(settings.sqlalchemy_url)
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(workdir),
        "SWITCHBOARD_DATABASE_URL": settings.sqlalchemy_url,
        "SWITCHBOARD_CATALOG_PATH": str(settings.catalog_path),
        "SWITCHBOARD_APP_SERVICE_TOKEN": APP_TOKEN,
        "SWITCHBOARD_USAGE_FLUSH_INTERVAL_S": "0.05",
        "REDIS_URL": REDIS_URL,
        "SWITCHBOARD_REDIS_PREFIX": prefix,
        **{f"SWITCHBOARD_{key.upper()}": str(value) for key, value in options.items()},
    }
    try:
        with hub_processes(env, workdir, processes) as urls:
            yield RedisHubs(urls[0], urls[-1], settings)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def usage_rows(settings: Settings, service: str, count: int = 1) -> list[UsageRecord]:
    """The usage rows of `service` in the hub's database, once `count` are written (they are
    written in batches), or what there is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        with Session(get_engine(settings.sqlalchemy_url)) as session:
            query = select(UsageRecord).where(UsageRecord.service_name == service)
            rows = list(session.exec(query).all())
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
