"""Several hub and chat replicas behind a reverse proxy, for `switchboard run --replicas N`.

The proxy (Debian's nginx, `make nginx`) takes the addresses one hub and one chat would have
(SWITCHBOARD_HUB_HOST/PORT and SWITCHBOARD_APP_HOST/PORT), so links, sign-in redirects and
cookies stay what they are with one of each; the replicas listen on the next ports up. The
hub's routes are balanced across the hub replicas; a browser sticks to one chat replica while
its socket lives (by Chainlit's session cookie), and reconnects to another when that one goes
away: the page is on its conversation's address by then, and the socket it opens again names
the conversation, which the other replica resumes from the database.
Replicas share their state through PostgreSQL and Redis, so two or more need both.
"""

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.child_processes import CHAT, HUB, Child, start_child, wait_for
from hub.core.config import Settings

__all__ = [
    "MAX_REPLICAS",
    "PROXY",
    "Topology",
    "proxy_config",
    "replicas_problem",
    "start_chat_replicas",
    "start_hub_replicas",
]

MAX_REPLICAS = 16
PROXY = "the proxy"
NGINX = "/usr/sbin/nginx"
TEMPLATE = Path(__file__).resolve().parent / "deploy" / "nginx.conf.template"
REPO_ROOT = Path(__file__).resolve().parent.parent
# A replica the proxy could not reach is left out this long before it is tried again.
_FAIL_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class Topology:
    """Where the replicas listen: `host` with one port each."""

    hub_host: str
    hub_ports: tuple[int, ...]
    chat_host: str
    chat_ports: tuple[int, ...]

    @classmethod
    def beside(cls, settings: Settings, replicas: int) -> "Topology":
        """Replicas on the ports just above the hub's and the chat's."""
        return cls(
            hub_host=settings.hub_host,
            hub_ports=tuple(settings.hub_port + 1 + at for at in range(replicas)),
            chat_host=settings.app_host,
            chat_ports=tuple(settings.app_port + 1 + at for at in range(replicas)),
        )


def replicas_problem(settings: Settings, replicas: int) -> str | None:
    """Why `replicas` replicas cannot run on these settings, or None."""
    if not 1 <= replicas <= MAX_REPLICAS:
        return f"--replicas takes 1 to {MAX_REPLICAS}, not {replicas}"
    if replicas == 1:
        return None
    if not settings.sqlalchemy_url.startswith(("postgresql", "postgres:")):
        return (
            "several replicas share one database: set DATABASE_URL to a PostgreSQL URL "
            "(e.g. postgresql+psycopg://user@127.0.0.1:5432/switchboard)"
        )
    if not settings.redis_url:
        return (
            "several replicas share rate limits, breakers and chat sessions through Redis: "
            "set REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
        )
    if shutil.which(NGINX) is None:
        return f"several replicas run behind nginx, which is not at {NGINX}: run `make nginx`"
    return None


def _servers(addresses: Sequence[str]) -> str:
    return "\n".join(
        f"        server {address} max_fails=1 fail_timeout={_FAIL_TIMEOUT_S}s;"
        for address in addresses
    )


def proxy_config(
    *,
    hubs: Sequence[str],
    chats: Sequence[str],
    hub_listen: str,
    chat_listen: str,
    state_dir: str,
) -> str:
    """The proxy's nginx configuration from hub/deploy/nginx.conf.template: `hubs` and
    `chats` are the replicas' host:port, the proxy listens on the two `*_listen` addresses
    and keeps its pid and buffers in `state_dir`."""
    values = {
        "state_dir": state_dir,
        "hub_servers": _servers(hubs),
        "chat_servers": _servers(chats),
        "hub_listen": hub_listen,
        "chat_listen": chat_listen,
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{ " + name + " }}", value)
    return text


def _public_urls(settings: Settings) -> dict[str, str]:
    """Every replica names the proxy's addresses as the hub's and the chat's."""
    return {
        "SWITCHBOARD_PUBLIC_HUB_URL": settings.hub_public_url,
        "SWITCHBOARD_PUBLIC_APP_URL": settings.app_public_url,
    }


def start_hub_replicas(
    children: list[Child],
    topology: Topology,
    settings: Settings,
    env: Mapping[str, str],
    state_dir: Path,
) -> None:
    """Start the hub replicas, then the proxy in front, waiting until each answers; each is
    appended to `children` as it starts, for the caller to stop."""
    started = len(children)
    for number, port in enumerate(topology.hub_ports, start=1):
        hub_env = {
            **env,
            **_public_urls(settings),
            "SWITCHBOARD_HUB_HOST": topology.hub_host,
            "SWITCHBOARD_HUB_PORT": str(port),
        }
        name = f"{HUB} replica {number}"
        children.append(start_child(name, [sys.executable, "-m", "hub.serve"], REPO_ROOT, hub_env))
    for child, port in zip(children[started:], topology.hub_ports, strict=True):
        wait_for(f"http://{topology.hub_host}:{port}/healthz", child, timeout_s=60)
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "nginx.conf"
    config.write_text(
        proxy_config(
            hubs=[f"{topology.hub_host}:{port}" for port in topology.hub_ports],
            chats=[f"{topology.chat_host}:{port}" for port in topology.chat_ports],
            hub_listen=f"{settings.hub_host}:{settings.hub_port}",
            chat_listen=f"{settings.app_host}:{settings.app_port}",
            state_dir=str(state_dir.resolve()),
        )
    )
    command = [NGINX, "-e", "stderr", "-p", str(state_dir), "-c", str(config)]
    proxy = start_child(PROXY, [*command, "-g", "daemon off;"], REPO_ROOT, dict(env))
    children.append(proxy)
    wait_for(settings.hub_url + "/healthz", proxy, timeout_s=30)


def start_chat_replicas(
    children: list[Child], topology: Topology, settings: Settings, env: Mapping[str, str]
) -> None:
    """Start the chat replicas (behind the proxy already up), waiting until each answers;
    each is appended to `children` as it starts, for the caller to stop."""
    started = len(children)
    for number, port in enumerate(topology.chat_ports, start=1):
        command = [sys.executable, "-m", "chainlit", "run", "app/main.py", "--headless"]
        command += ["--host", topology.chat_host, "--port", str(port)]
        chat_env = {**env, **_public_urls(settings)}
        children.append(start_child(f"{CHAT} replica {number}", command, REPO_ROOT, chat_env))
    for child, port in zip(children[started:], topology.chat_ports, strict=True):
        wait_for(f"http://{topology.chat_host}:{port}", child, timeout_s=90)
