"""The request id that follows one call through the platform: from the chat's turn through the
hub to the provider or the MCP server, in every log line on the way.

A caller may send its own in `X-Request-ID`; one that is too long or has characters outside
letters, digits, `.`, `_`, `:` and `-` is replaced with a new one (it goes into log lines and
headers, so it is never passed on as it came). The id of the work under way is held in a
context variable: asyncio tasks started inside that work inherit it.
"""

import re
import secrets
from contextvars import ContextVar, Token

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestIdScope",
    "accepted_request_id",
    "current_request_id",
    "new_request_id",
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


class RequestIdScope:
    """`with RequestIdScope(request_id):` makes `request_id` the current one inside the block
    (a class rather than a generator: it is entered on every request)."""

    __slots__ = ("_request_id", "_token")
    _token: Token[str | None]

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id

    def __enter__(self) -> str:
        self._token = _current.set(self._request_id)
        return self._request_id

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
