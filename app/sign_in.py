"""One sign-in for the chat and the hub: the chat trusts the hub's session cookie.

The hub's cookie is host-wide (cookies do not depend on the port), so it reaches the chat
too. Chainlit's header sign-in (`/auth/header`) turns it into Chainlit's own token; the gate
in front of Chainlit sends a browser with no live hub session to the hub's sign-in page, and
refuses Chainlit's token once the hub session it came from has ended or belongs to someone
else (signed out, revoked by an admin, another person signed in on this browser). Like the
hub, it refuses a signed-in request that changes something, or opens a websocket, from
another site's page (hub/core/origin_check.py).
"""

import logging
import time
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

import jwt
from chainlit.auth.cookie import get_token_from_cookies
from chainlit.auth.jwt import decode_jwt
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.hub_client import HubClient, HubError, HubUser
from hub.core.origin_check import check_origin
from hub.identity.cookies import CHAT_COOKIES, SESSION_COOKIE

__all__ = ["HubSessions", "SignInGate", "cookies_of"]

logger = logging.getLogger(__name__)

# Paths Chainlit serves to anyone: its static files, its sign-in settings, sign-in and out.
_OPEN_PREFIXES = ("/assets/", "/public/", "/copilot/", "/avatars/")
_OPEN_PATHS = frozenset(
    {
        "/auth/config",
        "/auth/header",
        "/logout",
        "/favicon",
        "/logo",
        "/health",
        "/project/translations",
    }
)
_CACHE_LIMIT = 10_000


def cookies_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's cookies; a malformed Cookie header counts as none."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


class HubSessions:
    """Who a hub session belongs to, asked of the hub and remembered for `ttl_s`, so that a
    page's many requests cost the hub one question; an ended session is noticed within it."""

    def __init__(self, hub: Callable[[], HubClient], ttl_s: float = 5.0) -> None:
        self._hub = hub
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[float, HubUser | None]] = {}

    async def person(self, token: str) -> HubUser | None:
        """The person signed in with `token`, or None when it ended or never was.
        Raises HubError when the hub cannot say."""
        now = time.monotonic()
        if (known := self._known.get(token)) is not None and known[0] > now:
            return known[1]
        person = await self._hub().session_user(token)
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[token] = (now + self._ttl_s, person)
        return person

    async def end(self, token: str) -> None:
        self._known.pop(token, None)
        await self._hub().end_session(token)


def _clear_chat_cookies(response: Response) -> Response:
    for name in CHAT_COOKIES:
        response.delete_cookie(name)
    return response


def _chat_identifier(token: str) -> str | None:
    try:
        return decode_jwt(token).identifier
    except (jwt.PyJWTError, TypeError, ValueError):
        return None


class SignInGate:
    """ASGI middleware in front of Chainlit; see the module's docstring."""

    def __init__(self, app: ASGIApp, *, sessions: HubSessions, hub_url: str, chat_url: str) -> None:
        self.app = app
        self.sessions = sessions
        self.hub_url = hub_url.rstrip("/")
        self.chat_url = chat_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if reason := check_origin(scope, [self.chat_url], site="chat"):
            await self._answer(scope, receive, send, PlainTextResponse(reason, status_code=403))
            return
        path: str = scope["path"]
        if path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookies_of(headers)
        chat_token = get_token_from_cookies(cookies)
        navigation = (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and "text/html" in headers.get("accept", "")
        )
        if not navigation and chat_token is None:
            # Chainlit refuses what needs a sign-in by itself.
            await self.app(scope, receive, send)
            return
        response = await self._refusal(scope, cookies.get(SESSION_COOKIE), chat_token, navigation)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await self._answer(scope, receive, send, response)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting refuses the handshake (HTTP 403).
            await send({"type": "websocket.close", "code": 1008})
        else:
            await response(scope, receive, send)

    async def _refusal(
        self, scope: Scope, hub_token: str | None, chat_token: str | None, navigation: bool
    ) -> Response | None:
        """What to answer instead of Chainlit, or None to let the request through."""
        try:
            person = await self.sessions.person(hub_token) if hub_token else None
        except HubError as error:
            logger.warning("cannot check a sign-in at the hub: %s", error)
            return PlainTextResponse(f"{error}", status_code=503)
        same_person = person is not None and (
            chat_token is None or _chat_identifier(chat_token) == person.key
        )
        if same_person:
            return None
        if not navigation:
            return _clear_chat_cookies(
                JSONResponse({"detail": "Your sign-in has ended; sign in again."}, 401)
            )
        query = scope["query_string"].decode("latin-1")
        here = scope["path"] + (f"?{query}" if query else "")
        if person is not None:
            # Chainlit's token is someone else's: drop it and load the page again, which
            # signs this person in afresh.
            return _clear_chat_cookies(RedirectResponse(here, status_code=303))
        back_to = self.chat_url + ("/" if scope["path"] == "/login" else here)
        login = f"{self.hub_url}/login?next={quote(back_to, safe='')}"
        return _clear_chat_cookies(RedirectResponse(login, status_code=303))
