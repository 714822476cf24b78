"""The local OpenID Connect provider `switchboard run` starts in development, so that company
sign-in works on a laptop with nothing from outside: oidc-provider-mock, with demo people in
two teams. Its sign-in page lists them; anyone may pick any of them, so it is for development
only and listens on loopback."""

import importlib.util
import json
import secrets
import sys
from dataclasses import dataclass

from hub.core.config import Settings

__all__ = [
    "DEMO_PEOPLE",
    "DemoPerson",
    "is_available",
    "issuer",
    "provider_command",
    "provider_env",
    "provider_options",
]

MODULE = "oidc_provider_mock"
CLIENT_ID = "switchboard-local"


@dataclass(frozen=True, slots=True)
class DemoPerson:
    subject: str
    name: str
    groups: tuple[str, ...]

    def claims(self) -> dict[str, object]:
        return {
            "sub": self.subject,
            "name": self.name,
            "preferred_username": self.subject,
            "email": f"{self.subject}@example.com",
            "groups": list(self.groups),
        }


# Groups as the default SWITCHBOARD_OIDC_* settings read them: team-<name> for teams,
# switchboard-admins and switchboard-builders for roles.
DEMO_PEOPLE = (
    DemoPerson("ana", "Ana Admin", ("team-platform", "switchboard-admins")),
    DemoPerson("ben", "Ben Builder", ("team-growth", "switchboard-builders")),
    DemoPerson("cho", "Cho Member", ("team-growth",)),
    DemoPerson("dev", "Dev Member", ("team-platform",)),
)


def is_available() -> bool:
    return importlib.util.find_spec(MODULE) is not None


def issuer(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.local_identity_provider_port}"


def provider_options() -> list[str]:
    """Nonces required, and the demo people."""
    options = ["--require-nonce"]
    for person in DEMO_PEOPLE:
        options += ["--user-claims", json.dumps(person.claims())]
    return options


def provider_command(settings: Settings) -> list[str]:
    port = str(settings.local_identity_provider_port)
    command = [sys.executable, "-m", MODULE, "--host", "127.0.0.1", "--port", port]
    return command + provider_options()


def provider_env(settings: Settings) -> dict[str, str]:
    """What points the hub at the local provider (it takes any client and secret)."""
    return {
        "SWITCHBOARD_OIDC_ISSUER": issuer(settings),
        "SWITCHBOARD_OIDC_CLIENT_ID": CLIENT_ID,
        "SWITCHBOARD_OIDC_CLIENT_SECRET": secrets.token_urlsafe(24),
        "SWITCHBOARD_OIDC_PROVIDER_LABEL": "the local identity provider",
    }
