"""Cross-site request forgery: a state-changing request that the session cookie authenticates
must come from the hub's own pages.

Browsers send the session cookie with any request to the hub, whichever site made it, and
they send `Origin` (or at least `Referer`) with every cross-site POST; so a POST, PUT, PATCH
or DELETE with the cookie must name the hub's own origin (as the browser sees it: the request's
scheme and Host, or `SWITCHBOARD_PUBLIC_HUB_URL` behind a proxy). Services call with
`Authorization: Bearer` and no cookie, which no other site can make a browser send, and pass
untouched. A request with no cookie is checked only when it names an origin (signing in from
another site is refused too). The check runs on the raw ASGI scope, ahead of the hub's
middleware and hot routes (hub/main.py), so it costs one pass over the headers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Scope

from hub.gateway.errors import openai_error_response
from hub.identity.cookies import CHAT_COOKIES, SESSION_COOKIE

__all__ = ["check_origin", "origin_refusal"]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SERVICE_HINT = "Services call with 'Authorization: Bearer <token>' and no session cookie."


@dataclass(frozen=True, slots=True)
class _Site:
    name: str
    cookies: tuple[str, ...]
    public_url_setting: str


# The chat (app/sign_in.py) runs the same check: the hub's cookie reaches it too, and
# Chainlit's own sign-in cookie is one more that a forged request would ride on.
_SITES = {
    "hub": _Site("the hub", (SESSION_COOKIE,), "SWITCHBOARD_PUBLIC_HUB_URL"),
    "chat": _Site("the chat", (SESSION_COOKIE, *CHAT_COOKIES), "SWITCHBOARD_PUBLIC_APP_URL"),
}


@lru_cache(maxsize=256)
def _origin_of(url: str) -> str | None:
    """`scheme://host:port` of a URL (default port spelled out), or None if it has none."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def _headers(scope: Scope) -> dict[str, str]:
    """The headers this check reads (the first of each)."""
    wanted = (b"origin", b"referer", b"host", b"cookie", b"authorization")
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in wanted and name.decode() not in found:
            found[name.decode()] = value.decode("latin-1")
    return found


def _own_origin(scope: Scope, host: str | None) -> str | None:
    if host is None and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}"
    return _origin_of(f"{scope.get('scheme', 'http')}://{host}") if host else None


def check_origin(
    scope: Scope, trusted: Iterable[str] = (), *, site: Literal["hub", "chat"] = "hub"
) -> str | None:
    """None when the request may go on; otherwise why it is refused and what to fix.

    `trusted` are further origins (or URLs) the site's pages are served from, such as its
    public URL behind a proxy. A websocket handshake is checked like a state-changing
    request: browsers send the cookies and an Origin with it, whichever site opened it."""
    if scope["type"] == "http":
        if scope["method"] not in STATE_CHANGING:
            return None
    elif scope["type"] != "websocket":
        return None
    where = _SITES[site]
    headers = _headers(scope)
    cookies = cookie_parser(headers.get("cookie", ""))
    has_cookie = any(cookies.get(name) for name in where.cookies)
    if not has_cookie and headers.get("authorization", "").lower().startswith("bearer "):
        return None
    claimed = headers.get("origin")
    source = "Origin"
    if claimed is None and "referer" in headers:
        claimed, source = headers["referer"], "Referer"
    if claimed is None:
        if not has_cookie:
            return None
        return (
            "Refused: a signed-in request that changes something must carry an Origin or "
            f"Referer header naming {where.name} (browsers send one from its own pages). "
            + _SERVICE_HINT
        )
    own = _own_origin(scope, headers.get("host"))
    allowed = {own} | {_origin_of(url) for url in trusted}
    origin = _origin_of(claimed)
    if origin is not None and origin in allowed:
        return None
    shown = claimed[:200] if claimed != "null" else "null (a sandboxed or privacy-stripped page)"
    return (
        f"Refused: this request was sent from {shown} ({source} header), not from "
        f"{where.name}'s own pages at {own or 'its address'}. Send it from {where.name}'s pages "
        f"(behind a proxy, set {where.public_url_setting} to the address people open). "
        + _SERVICE_HINT
    )


def origin_refusal(scope: Scope, trusted: Iterable[str] = ()) -> Response | None:
    """The 403 to answer when `check_origin` refuses the request, else None."""
    reason = check_origin(scope, trusted)
    if reason is None:
        return None
    path: str = scope["path"]
    if path.startswith("/v1/"):
        return openai_error_response(403, reason, type="permission_error", code="bad_origin")
    if path.startswith("/api/"):
        return JSONResponse({"detail": reason}, status_code=403)
    return PlainTextResponse(reason, status_code=403)
