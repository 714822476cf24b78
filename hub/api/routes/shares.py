"""Share links of conversations: the chat makes them for their owner; people list, read and
revoke them (pages for people are in hub/web/share_pages.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hub.api.contract import ShareCreate
from hub.api.deps import CurrentActor, HubStateDep, SessionDep
from hub.api.paging import PageDep
from hub.body_limits import BodyLimit
from hub.core.errors import InvalidError
from hub.core.full_text import MAX_WORDS, word_count, words_of
from hub.models.share import MAX_SNAPSHOT_BYTES, SharedMatch, SharePublic, ShareView
from hub.services.share_search import search_shared
from hub.services.shares import (
    create_share,
    list_shares,
    revoke_share,
    to_public,
    view_share,
)

__all__ = ["SHARE_BODY_LIMIT", "router"]

router = APIRouter(prefix="/api/shares", tags=["shares"])


# An oversized snapshot is refused before it is read (hub/body_limits.py).
SHARE_BODY_LIMIT = BodyLimit(
    MAX_SNAPSHOT_BYTES,
    "a shared conversation",
    "Share a shorter one, or one with fewer large tables.",
)


@router.post("", response_model=SharePublic, status_code=201)
def make(
    share_in: ShareCreate, actor: CurrentActor, session: SessionDep, hub_state: HubStateDep
) -> SharePublic:
    """Share a snapshot of the caller's own conversation (the chat app, for its person)."""
    share = create_share(session=session, actor=actor, share_in=share_in)
    return to_public(share, hub_url=hub_state.settings.hub_public_url)


@router.get("", response_model=list[SharePublic])
def mine(
    actor: CurrentActor, session: SessionDep, hub_state: HubStateDep, page: PageDep
) -> list[SharePublic]:
    """The caller's links, newest first, with whether each is active, expired or revoked.
    Paged."""
    hub_url = hub_state.settings.hub_public_url
    shares = page.of(list_shares(session=session, actor=actor))
    return [to_public(share, hub_url=hub_url) for share in shares]


MAX_SEARCH = 500


@router.get("/search", response_model=list[SharedMatch])
def search(
    q: Annotated[str, Query(description="the words to look for, all of them")],
    actor: CurrentActor,
    session: SessionDep,
    hub_state: HubStateDep,
    page: PageDep,
) -> list[SharedMatch]:
    """The titles and steps of conversations others shared with the caller (active links)
    that contain every word, best first. Paged."""
    if len(q) > MAX_SEARCH:
        raise InvalidError(f"A search is at most {MAX_SEARCH} characters; shorten it.")
    if word_count(q) > MAX_WORDS:
        raise InvalidError(f"A search takes at most {MAX_WORDS} words; leave some out.")
    hits = search_shared(
        session=session, actor=actor, words=words_of(q), limit=page.fetch, offset=page.offset
    )
    hub_url = hub_state.settings.hub_public_url.rstrip("/")
    return page.answer(
        [
            SharedMatch(
                share_id=hit.share_id,
                title=hit.title,
                owner_name=hit.owner_name,
                step_number=hit.step_number,
                snippet=hit.snippet,
                url=hub_url + hit.path,
            )
            for hit in hits
        ]
    )


@router.get("/{share_id}", response_model=ShareView)
def read(
    share_id: str,
    actor: CurrentActor,
    session: SessionDep,
    hub_state: HubStateDep,
) -> ShareView:
    """The snapshot, for someone it is shared with; 410 once revoked or expired."""
    hub_url = hub_state.settings.hub_public_url
    return view_share(session=session, share_id=share_id, actor=actor, hub_url=hub_url)


@router.delete("/{share_id}", status_code=204)
def revoke(share_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Revoke a link at once (its owner or an admin)."""
    revoke_share(session=session, share_id=share_id, actor=actor)
    return Response(status_code=204)
