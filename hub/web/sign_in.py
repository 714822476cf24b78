"""Signing in and out, once for the hub's pages and the chat: the company's identity provider
(OpenID Connect) and, where allowed, local passwords.

The session cookie is host-wide (cookies do not depend on the port), so the chat on the same
host reads it too; `SWITCHBOARD_SESSION_COOKIE_DOMAIN` widens it to sibling hosts. Signing
out here ends the session and clears the chat's own sign-in cookie as well.
"""

import json
import logging
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from hub.api.deps import HubStateDep, user_actor
from hub.core.config import Settings
from hub.core.crypto import SecretUnreadableError
from hub.identity.attempts import SignInAttempts
from hub.identity.cookies import CHAT_COOKIES, SESSION_COOKIE
from hub.identity.oidc import OidcError, PendingSignIn
from hub.models.user import User
from hub.services.audit import record_event
from hub.services.users import GroupRules, authenticate_password, sign_in_from_claims
from hub.services.web_sessions import end_web_session, start_web_session
from hub.state import HubState
from hub.web.pages import page

__all__ = ["group_rules", "router"]

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# The pending sign-in, encrypted, between leaving for the provider and coming back.
_PENDING_COOKIE = "switchboard_sign_in"
_PENDING_MAX_AGE_S = 600


def group_rules(settings: Settings) -> GroupRules:
    return GroupRules(
        claim=settings.oidc_groups_claim,
        team_prefix=settings.oidc_team_group_prefix,
        admin_groups=settings.oidc_groups("oidc_admin_groups"),
        builder_groups=settings.oidc_groups("oidc_builder_groups"),
    )


def _safe_next(target: str, settings: Settings) -> str:
    """Only this hub's paths and the chat's pages: never an open redirect to another site."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    chat = settings.app_public_url
    if target == chat or target.startswith(chat + "/"):
        return target
    return "/servers"


def _sign_in_page(
    request: Request, hub_state: HubState, *, next_url: str, status: int = 200, **extra: Any
) -> Response:
    settings = hub_state.settings
    context: dict[str, Any] = {
        "next": next_url,
        "username": "",
        "error": None,
        "notice": None,
        "oidc": settings.oidc_enabled,
        "oidc_label": settings.oidc_provider_label,
        "passwords": settings.passwords_allowed,
    }
    context.update(extra)
    return page(request, "login.html", status=status, **context)


def _set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.web_session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.hub_public_url.startswith("https://"),
        domain=settings.session_cookie_domain or None,
    )


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _start_session(session: Session, settings: Settings, user: User, method: str) -> str:
    """Start the person's session; the sign-in is in the audit log with it."""
    record_event(
        session=session,
        actor=user_actor(user),
        action="sign_in",
        object_kind="user",
        object_id=user.key,
        details={"method": method, "role": str(user.role), "teams": list(user.teams)},
    )
    return start_web_session(
        session=session, user=user, days=settings.web_session_days, method=method
    )


@router.get("/login")
async def login_form(request: Request, hub_state: HubStateDep, next: str = "/servers") -> Response:
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return _sign_in_page(
        request, hub_state, next_url=_safe_next(next, hub_state.settings), notice=notice
    )


@router.post("/login")
async def login(request: Request, hub_state: HubStateDep) -> Response:
    settings = hub_state.settings
    form = await request.form()
    username, password = str(form.get("username", ""))[:100], str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/servers")), settings)
    if not settings.passwords_allowed:
        return _sign_in_page(
            request,
            hub_state,
            next_url=target,
            status=403,
            error=f"Password sign-in is off here; sign in with {settings.oidc_provider_label}.",
        )
    attempts: SignInAttempts = hub_state.sign_in_attempts
    address = _client_address(request)
    if wait_s := attempts.blocked_for(username, address):
        response = _sign_in_page(
            request,
            hub_state,
            next_url=target,
            status=429,
            username=username,
            error=f"Too many failed sign-ins; try again in {wait_s} seconds.",
        )
        response.headers["Retry-After"] = str(wait_s)
        return response

    def sign_in() -> str | None:
        with Session(hub_state.engine) as session:
            user = authenticate_password(session=session, username=username, password=password)
            if user is None:
                return None
            return _start_session(session, settings, user, "password")

    token = await anyio.to_thread.run_sync(sign_in) if username and password else None
    if token is None:
        attempts.failed(username, address)
        return _sign_in_page(
            request,
            hub_state,
            next_url=target,
            status=401,
            username=username,
            error="Wrong username or password.",
        )
    attempts.succeeded(username)
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(response, settings, token)
    return response


@router.get("/auth/oidc/start")
async def oidc_start(request: Request, hub_state: HubStateDep, next: str = "/servers") -> Response:
    """Send the person to the identity provider, remembering state, nonce and PKCE verifier."""
    target = _safe_next(next, hub_state.settings)
    if hub_state.oidc is None:
        return _sign_in_page(
            request,
            hub_state,
            next_url=target,
            status=404,
            error="Single sign-on is not configured here (SWITCHBOARD_OIDC_ISSUER).",
        )
    try:
        url, pending = await hub_state.oidc.begin(target)
    except OidcError as error:
        logger.warning("sign-in could not start: %s", error.message)
        return _sign_in_page(request, hub_state, next_url=target, status=502, error=error.message)
    response = RedirectResponse(url, status_code=303)
    sealed = hub_state.box.encrypt(
        json.dumps(
            {
                "state": pending.state,
                "nonce": pending.nonce,
                "verifier": pending.code_verifier,
                "next": pending.next,
            }
        )
    )
    response.set_cookie(
        _PENDING_COOKIE,
        sealed,
        max_age=_PENDING_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=hub_state.settings.hub_public_url.startswith("https://"),
        path="/auth/oidc",
    )
    return response


def _pending(request: Request, hub_state: HubState) -> PendingSignIn:
    sealed = request.cookies.get(_PENDING_COOKIE)
    if not sealed:
        raise OidcError(
            "This sign-in was not started here, or it was already used or took longer than "
            "ten minutes. Sign in again."
        )
    try:
        data = json.loads(hub_state.box.decrypt(sealed, max_age_s=_PENDING_MAX_AGE_S))
        return PendingSignIn(
            state=str(data["state"]),
            nonce=str(data["nonce"]),
            code_verifier=str(data["verifier"]),
            next=str(data["next"]),
        )
    except (SecretUnreadableError, ValueError, KeyError, TypeError) as error:
        raise OidcError(
            "This sign-in expired (over ten minutes) or was altered. Sign in again."
        ) from error


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request, hub_state: HubStateDep) -> Response:
    """Where the identity provider sends the person back with a code."""
    params = request.query_params
    try:
        if hub_state.oidc is None:
            raise OidcError("Single sign-on is not configured here (SWITCHBOARD_OIDC_ISSUER).")
        if provider_error := params.get("error"):
            description = params.get("error_description", "")[:300]
            raise OidcError(
                f"The identity provider did not sign you in ({provider_error[:100]}"
                + (f": {description}" if description else "")
                + ")."
            )
        pending = _pending(request, hub_state)
        if params.get("state") != pending.state:
            raise OidcError(
                "This sign-in's state does not match the one this browser started; it may be "
                "a forged or stale link. Sign in again."
            )
        code = params.get("code", "")
        if not code:
            raise OidcError("The identity provider sent no code back.")
        claims = await hub_state.oidc.finish(code=code, pending=pending)
    except OidcError as error:
        logger.warning("sign-in refused: %s", error.message)
        response = _sign_in_page(
            request, hub_state, next_url="/servers", status=400, error=error.message
        )
        response.delete_cookie(_PENDING_COOKIE, path="/auth/oidc")
        return response
    issuer, rules = hub_state.oidc.issuer, group_rules(hub_state.settings)

    def sign_in() -> str:
        with Session(hub_state.engine) as session:
            user = sign_in_from_claims(session=session, issuer=issuer, claims=claims, rules=rules)
            return _start_session(session, hub_state.settings, user, "oidc")

    token = await anyio.to_thread.run_sync(sign_in)
    response = RedirectResponse(pending.next, status_code=303)
    response.delete_cookie(_PENDING_COOKIE, path="/auth/oidc")
    _set_session_cookie(response, hub_state.settings, token)
    return response


@router.post("/logout")
async def logout(request: Request, hub_state: HubStateDep) -> Response:
    """End the session for the hub and the chat alike."""
    if token := request.cookies.get(SESSION_COOKIE):

        def end() -> None:
            with Session(hub_state.engine) as session:
                end_web_session(session=session, token=token)

        await anyio.to_thread.run_sync(end)
    target = "/login?signed_out=1"
    if next_url := request.query_params.get("next"):
        target += f"&next={quote(_safe_next(next_url, hub_state.settings))}"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, domain=hub_state.settings.session_cookie_domain or None)
    for name in CHAT_COOKIES:
        response.delete_cookie(name)
    return response
