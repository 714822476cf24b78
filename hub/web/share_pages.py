"""Share link pages: a shared conversation as its owner shared it, read-only, and the owner's
list of links with a button to revoke each.

A shared page is for the people it is shared with: it asks search engines not to index it
and browsers not to send its address on as a referrer, and is never cached by proxies.
"""

from pathlib import Path

import anyio
import plotly
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import FileResponse, RedirectResponse, Response

from hub.api.deps import HubStateDep, OptionalActor
from hub.api.errors import status_of
from hub.core.errors import Refusal
from hub.models.share import Share, ShareView
from hub.services.shares import list_shares, revoke_share, to_public, view_share
from hub.web.pages import page, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_PRIVATE = {
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


def _private(response: Response) -> Response:
    response.headers.update(_PRIVATE)
    return response


@router.get("/static/plotly.min.js")
async def plotly_script() -> FileResponse:
    """The chart library shared pages draw with, served from the hub (no CDN)."""
    return FileResponse(_PLOTLY_JS, media_type="text/javascript")


@router.get("/s/{share_id}")
async def shared_conversation(
    request: Request, share_id: str, actor: OptionalActor, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return _private(to_login(request))
    settings = hub_state.settings

    def load() -> tuple[ShareView, bool]:
        with Session(hub_state.engine) as session:
            view = view_share(
                session=session, share_id=share_id, actor=actor, hub_url=settings.hub_public_url
            )
            row = session.get(Share, share_id)
            return view, row is not None and actor.owns(row)

    try:
        share, is_owner = await anyio.to_thread.run_sync(load)
    except Refusal as error:
        return _private(
            page(request, "share.html", status=status_of(error), actor=actor, error=error.message)
        )
    continue_url = f"{settings.app_public_url}/shares/{share.id}/continue"
    return _private(
        page(
            request,
            "share.html",
            actor=actor,
            share=share,
            error=None,
            continue_url=continue_url,
            is_owner=is_owner,
        )
    )


@router.get("/shares")
async def my_shares(request: Request, actor: OptionalActor, hub_state: HubStateDep) -> Response:
    if actor is None:
        return to_login(request)
    hub_url = hub_state.settings.hub_public_url

    def load() -> list[object]:
        with Session(hub_state.engine) as session:
            found = list_shares(session=session, actor=actor)
            return [to_public(share, hub_url=hub_url) for share in found]

    shares = await anyio.to_thread.run_sync(load)
    return page(request, "shares.html", actor=actor, shares=shares)


@router.post("/shares/{share_id}/revoke")
async def revoke(
    request: Request, share_id: str, actor: OptionalActor, hub_state: HubStateDep
) -> Response:
    if actor is None:
        return to_login(request)

    def run() -> None:
        with Session(hub_state.engine) as session:
            revoke_share(session=session, share_id=share_id, actor=actor)

    try:
        await anyio.to_thread.run_sync(run)
    except Refusal as error:
        return page(
            request, "share.html", status=status_of(error), actor=actor, error=error.message
        )
    return RedirectResponse("/shares", status_code=303)
