"""`switchboard run`: the whole platform on one machine, on embedded defaults.

Starts the local model (when installed), the local identity provider (in development), the
hub, the MCP servers and the chat app as child processes, waits until each answers, prints
where to go, and on Ctrl-C or SIGTERM stops them one at a time, each given the drain deadline
to finish what it holds (hub/child_processes.py).
"""

import os
import signal
import sys
import time
from pathlib import Path

from dotenv import dotenv_values

from hub import localmodel
from hub.child_processes import (
    CHAT,
    HUB,
    STOP_MARGIN_S,
    Child,
    StartupError,
    start_child,
    stop_children,
    wait_for,
)
from hub.core.config import Settings, require_strong_secret
from hub.core.db import migrate
from hub.identity import local_provider
from hub.replicas import Topology, replicas_problem, start_chat_replicas, start_hub_replicas
from hub.seed import (
    BIGQUERY,
    DATAMODEL,
    DEV_PASSWORD,
    DEV_USER,
    HANDBOOK,
    publish_analyst,
    register_server,
    seed_dev_user,
    setup_token,
)
from hub.web.sign_in import group_rules
from mcp_servers.bigquery.warehouse import WarehouseSettings

__all__ = ["run_platform"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _describe(person: local_provider.DemoPerson, settings: Settings) -> str:
    """A demo person as the hub will read their groups: role and teams."""
    rules = group_rules(settings)
    return f"{rules.role(person.groups).value} of {', '.join(rules.teams(person.groups))}"


def _ports(ports: tuple[int, ...]) -> str:
    return ", ".join(str(port) for port in ports)


def _start(name: str, command: list[str], env: dict[str, str]) -> Child:
    return start_child(name, command, REPO_ROOT, env)


def run_platform(settings: Settings, replicas: int = 1) -> int:
    """Start every part and wait; with `replicas` above 1, that many hubs and chats behind
    a proxy (hub/replicas.py)."""
    if problem := replicas_problem(settings, replicas):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    topology = Topology.beside(settings, replicas)
    if settings.environment == "production":
        # The chat signs its sessions with this; in production it comes from the environment
        # (or the chat's .env), never from a file generated into the data directory. Checked
        # before anything starts, so nothing is migrated or seeded on a refused start.
        variable = "CHAINLIT_AUTH_SECRET"  # see app/auth_secret.py
        chat_secret = os.environ.get(variable) or dotenv_values(REPO_ROOT / ".env").get(variable)
        try:
            require_strong_secret(variable, chat_secret or "")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.sqlalchemy_url)
    seeded = settings.environment == "development" and seed_dev_user(settings)
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(settings.data_dir.resolve())}
    children: list[Child] = []
    local_sign_in = (
        settings.environment == "development"
        and not settings.oidc_issuer
        and local_provider.is_available()
    )

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if localmodel.is_available():
            print("Preparing the local model (first run assembles a 253 MB file)...", flush=True)
            localmodel.prepare_model(settings)
            model = _start("the local model server", localmodel.server_command(settings), env)
            children.append(model)
            model_url = f"http://127.0.0.1:{settings.local_model_port}/v1/models"
            wait_for(model_url, model, timeout_s=120)
        else:
            print(
                "The local model is not installed ('make run' installs it); "
                "only catalog models with keys will answer.",
                flush=True,
            )
        if local_sign_in:
            provider = _start(
                "the local identity provider", local_provider.provider_command(settings), env
            )
            children.append(provider)
            provider_url = local_provider.issuer(settings) + "/.well-known/openid-configuration"
            wait_for(provider_url, provider, timeout_s=30)
            env.update(local_provider.provider_env(settings))
        if replicas > 1:
            state_dir = settings.data_dir.resolve() / "proxy"
            start_hub_replicas(children, topology, settings, env, state_dir)
        else:
            hub_env = {
                **env,
                "SWITCHBOARD_HUB_HOST": settings.hub_host,
                "SWITCHBOARD_HUB_PORT": str(settings.hub_port),
            }
            hub = _start(HUB, [sys.executable, "-m", "hub.serve"], hub_env)
            children.append(hub)
            wait_for(settings.hub_url + "/healthz", hub, timeout_s=60)
        print("Starting the local BigQuery with the sample marketplace...", flush=True)
        warehouse = WarehouseSettings(data_dir=settings.data_dir)
        emulator_command = [sys.executable, "-m", "mcp_servers.bigquery.emulator"]
        emulator_command += ["--port", str(warehouse.emulator_port)]
        emulator_command += ["--data-dir", str(warehouse.emulator_data_dir)]
        if warehouse.uses_emulator:
            emulator = _start("the local BigQuery", emulator_command, env)
            children.append(emulator)
            dataset_url = (
                f"{warehouse.emulator_url}/bigquery/v2/projects/{warehouse.project_id}"
                f"/datasets/{warehouse.dataset}"
            )
            wait_for(dataset_url, emulator, timeout_s=120)
        registered: list[str] = []
        token = setup_token(settings)
        for module, port, server in (
            ("mcp_servers.handbook", settings.handbook_port, HANDBOOK),
            ("mcp_servers.datamodel", settings.handbook_port + 1, DATAMODEL),
            ("mcp_servers.bigquery", settings.handbook_port + 2, BIGQUERY),
        ):
            command = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)]
            child = _start(f"the {server['slug']} MCP server", command, env)
            children.append(child)
            url = f"http://127.0.0.1:{port}/mcp"
            wait_for(url, child, timeout_s=30)
            outcome = register_server(settings.hub_url, token, server, url)
            registered.append(f"{server['slug']} at {url} ({outcome})")
        app_url = f"http://{settings.app_host}:{settings.app_port}"
        if replicas > 1:
            start_chat_replicas(children, topology, settings, env)
        else:
            chat = _start(
                CHAT,
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
            wait_for(app_url, chat, timeout_s=90)
        print()
        print("Switchboard is running.")
        if replicas > 1:
            print(
                f"  {replicas} hub replicas on ports {_ports(topology.hub_ports)} and "
                f"{replicas} chat replicas on ports {_ports(topology.chat_ports)}, "
                "behind nginx at the addresses below"
            )
        print(f"  Chat: {app_url}")
        print(f"  Hub:  {settings.hub_url}  (API docs at {settings.hub_url}/docs)")
        for line in registered:
            print(f"  MCP:  {line}")
        analyst = publish_analyst(settings)
        print(f"  Agent: data-analyst ({analyst}); pick it in the chat's profile menu")
        if local_sign_in:
            people = ", ".join(
                f"{person.subject} ({_describe(person, settings)})"
                for person in local_provider.DEMO_PEOPLE
            )
            print(f"  Sign in with the local identity provider as one of: {people}")
        if seeded or settings.environment == "development":
            print(
                f"  Or sign in as '{DEV_USER}' with password '{DEV_PASSWORD}' "
                "(add people with 'switchboard user create NAME')."
            )
        print("Press Ctrl-C to stop.", flush=True)
        while all(child.process.poll() is None for child in children):
            time.sleep(1)
        failed = next(child for child in children if child.process.poll() is not None)
        print(f"{failed.name} stopped (exit code {failed.process.returncode}); stopping the rest.")
        return 1
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stop_children(children, wait_s=settings.shutdown_grace_s + STOP_MARGIN_S)
