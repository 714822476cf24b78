"""`switchboard run`: the whole platform on one machine, on embedded defaults.

Starts the local model (when installed), the hub and the chat app as child processes, waits
until each answers, prints where to go, and stops them all on Ctrl-C.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import Session, select

from hub import localmodel
from hub.core.config import Settings
from hub.core.db import get_engine, migrate
from hub.models.user import User
from hub.services.services import ensure_service
from hub.services.users import create_user

__all__ = ["DEV_PASSWORD", "DEV_USER", "run_platform"]

DEV_USER = "demo"
DEV_PASSWORD = "demo"
REPO_ROOT = Path(__file__).resolve().parent.parent


class StartupError(RuntimeError):
    pass


def _seed_dev_user(settings: Settings) -> bool:
    """In development, make a first user (an admin, so they can try every page) at once."""
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        if session.exec(select(User)).first() is not None:
            return False
        create_user(
            session=session,
            username=DEV_USER,
            password=DEV_PASSWORD,
            display_name="Demo User",
            team="platform",
            is_admin=True,
        )
        return True


def _wait_for(url: str, name: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartupError(f"{name} exited with code {process.returncode}; see its log above")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StartupError(f"{name} did not answer at {url} within {timeout_s:.0f} s")


HANDBOOK = {
    "slug": "handbook",
    "name": "Company handbook",
    "description": "Search and read the company handbook: expenses and travel, on-call, "
    "security and access, holidays and leave, onboarding, office and equipment.",
    "team": "platform",
    "tags": ["docs", "handbook", "shipped"],
}


def _register_handbook(settings: Settings, url: str) -> str:
    """Register the shipped handbook server on first start; say what happened."""
    token = "sb-setup-" + secrets.token_urlsafe(24)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        ensure_service(session=session, name="platform-setup", team="platform", token=token)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=settings.hub_url, headers=headers, timeout=30) as hub:
        if hub.get(f"/api/mcp/servers/{HANDBOOK['slug']}").status_code == 200:
            return "already registered"
        response = hub.post("/api/mcp/servers", json={**HANDBOOK, "url": url})
        if response.status_code != 201:
            return f"not registered: {response.json().get('detail', response.text)}"
    return "registered"


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env)


def run_platform(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.sqlalchemy_url)
    seeded = settings.environment == "development" and _seed_dev_user(settings)
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(settings.data_dir.resolve())}
    children: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if localmodel.is_available():
            print("Preparing the local model (first run assembles a 253 MB file)...", flush=True)
            localmodel.prepare_model(settings)
            model = _start(localmodel.server_command(settings), env)
            children.append(model)
            model_url = f"http://127.0.0.1:{settings.local_model_port}/v1/models"
            _wait_for(model_url, "the local model server", model, timeout_s=120)
        else:
            print(
                "The local model is not installed ('make run' installs it); "
                "only catalog models with keys will answer.",
                flush=True,
            )
        hub = _start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "hub.main:create_app",
                "--host",
                settings.hub_host,
                "--port",
                str(settings.hub_port),
                "--no-access-log",
            ],
            env,
        )
        children.append(hub)
        _wait_for(settings.hub_url + "/healthz", "the hub", hub, timeout_s=60)
        handbook_command = [sys.executable, "-m", "mcp_servers.handbook"]
        handbook_command += ["--host", "127.0.0.1", "--port", str(settings.handbook_port)]
        handbook = _start(handbook_command, env)
        children.append(handbook)
        handbook_url = f"http://127.0.0.1:{settings.handbook_port}/mcp"
        _wait_for(handbook_url, "the handbook MCP server", handbook, timeout_s=30)
        handbook_state = _register_handbook(settings, handbook_url)
        chat = _start(
            [
                sys.executable,
                "-m",
                "chainlit",
                "run",
                "app/main.py",
                "--headless",
                "--host",
                settings.app_host,
                "--port",
                str(settings.app_port),
            ],
            env,
        )
        children.append(chat)
        app_url = f"http://{settings.app_host}:{settings.app_port}"
        _wait_for(app_url, "the chat app", chat, timeout_s=90)
        print()
        print("Switchboard is running.")
        print(f"  Chat: {app_url}")
        print(f"  Hub:  {settings.hub_url}  (API docs at {settings.hub_url}/docs)")
        print(f"  MCP:  the company handbook at {handbook_url} ({handbook_state})")
        if seeded or settings.environment == "development":
            print(
                f"  Sign in as '{DEV_USER}' with password '{DEV_PASSWORD}' "
                "(add people with 'switchboard user create NAME')."
            )
        print("Press Ctrl-C to stop.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(1)
        failed = next(child for child in children if child.poll() is not None)
        print(f"A part of the platform stopped (exit code {failed.returncode}); stopping the rest.")
        return 1
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stop_all()
