"""The request id that follows one call through the platform: from the chat's turn through the
hub to the provider or the MCP server, in every log line on the way.

A caller may send its own in `X-Request-ID`; one that is too long or has characters outside
letters, digits, `.`, `_`, `:` and `-` is replaced with a new one (it goes into log lines and
headers, so it is never passed on as it came). The id of the work under way is held in a
context variable: asyncio tasks started inside that work inherit it.
"""

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "REQUEST_ID_HEADER",
    "accepted_request_id",
    "current_request_id",
    "new_request_id",
    "request_id_scope",
]

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 64
_SAFE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("switchboard_request_id", default=None)


def new_request_id() -> str:
    return secrets.token_hex(16)


def accepted_request_id(sent: str | None) -> str:
    """The caller's id when it is short and safe, else a new one."""
    if sent is not None and _SAFE.fullmatch(sent):
        return sent
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request or chat turn under way; None outside one."""
    return _current.get()


@contextmanager
def request_id_scope(request_id: str) -> Iterator[str]:
    """Make `request_id` the current one for the work inside the block."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)
