"""The secret Chainlit signs its session tokens with.

Taken from CHAINLIT_AUTH_SECRET when set; otherwise, outside production, generated once and
kept in the data directory, so sign-ins survive restarts without anyone having to configure a
secret locally. In production it must come from the environment and be strong.
"""

import os
import secrets
from pathlib import Path

from hub.core.config import get_settings, require_strong_secret

__all__ = ["ENV_VAR", "ensure_auth_secret"]

ENV_VAR = "CHAINLIT_AUTH_SECRET"
_FILE_NAME = "chainlit_auth_secret"


def _read_or_create(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        candidate = secrets.token_urlsafe(48)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(candidate + "\n")
        try:
            # link() never replaces: when two processes start together, the first one wins
            # and both read back the same complete file.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret")
    return secret


def ensure_auth_secret(data_dir: Path, *, production: bool | None = None) -> str:
    """Put the auth secret in the environment (where Chainlit reads it) and return it.

    `production` defaults to what the settings say; there a missing or weak secret is refused.
    """
    if production is None:
        production = get_settings().environment == "production"
    if production:
        secret = os.environ.get(ENV_VAR, "")
        require_strong_secret(ENV_VAR, secret)
        return secret
    if from_environment := os.environ.get(ENV_VAR):
        return from_environment
    secret = _read_or_create(data_dir / _FILE_NAME)
    os.environ[ENV_VAR] = secret
    return secret
