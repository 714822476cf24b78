"""Encrypting secrets at rest (MCP servers' header secrets) with the hub's secret key.

The key comes from SWITCHBOARD_SECRET_KEY; in development and tests it is generated once and
kept in the data folder, so nobody has to configure one to try the platform.
"""

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["SecretBox", "SecretUnreadableError", "load_or_create_key"]

_KEY_FILE = "hub_secret_key"


class SecretUnreadableError(ValueError):
    pass


def load_or_create_key(data_dir: Path) -> str:
    path = data_dir / _KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # never replaces: concurrent starts agree on one key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8").strip()


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        # Fernet wants 32 url-safe base64 bytes; derive them so any long random string works.
        digest = hashlib.sha256(b"switchboard-secrets:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, max_age_s: int | None = None) -> str:
        """The plaintext; `max_age_s` refuses what was encrypted longer ago than that."""
        try:
            return self._fernet.decrypt(token.encode(), ttl=max_age_s).decode()
        except InvalidToken as exc:
            raise SecretUnreadableError(
                "a stored secret cannot be decrypted: SWITCHBOARD_SECRET_KEY changed since it "
                "was saved; enter the secret again"
            ) from exc
