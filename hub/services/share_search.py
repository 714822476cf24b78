"""Full-text search of the conversations shared with a person (the index of migration 0022):
active links for everyone signed in, or for a team of theirs, that someone else made."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from hub.api.contract import ShareAudience
from hub.core.full_text import fts5_match, snippet_of, tsquery
from hub.models.actor import Actor
from hub.models.service import utcnow
from hub.models.share import Share
from hub.services.shares import require_person, share_path

__all__ = ["SharedHit", "search_shared"]

_entries = sa.table(
    "share_search_entry",
    sa.column("id", sa.Integer),
    sa.column("share_id", sa.Text),
    sa.column("step_number", sa.Integer),
    sa.column("body", sa.Text),
)


@dataclass(frozen=True, slots=True)
class SharedHit:
    share_id: str
    title: str
    owner_name: str
    # None when the title matched; else the step's number on the shared page, from 1.
    step_number: int | None
    snippet: str

    @property
    def path(self) -> str:
        """Where the match is on the shared page."""
        page = share_path(self.share_id)
        return page if self.step_number is None else f"{page}#step-{self.step_number}"


def _match(
    session: Session, words: list[str]
) -> tuple[sa.FromClause, sa.ColumnElement[bool] | sa.TextClause, sa.ColumnElement[Any]]:
    """The entries to read, the condition that they match `words`, and their rank (lower is
    better)."""
    if session.get_bind().dialect.name == "sqlite":
        index = sa.table("share_search", sa.column("rowid", sa.Integer))
        condition = sa.text("share_search MATCH :match").bindparams(match=fts5_match(words))
        rank = sa.literal_column("bm25(share_search)", sa.Float)
        source = _entries.join(index, index.c.rowid == _entries.c.id)
        return source, condition, rank
    query = sa.func.to_tsquery("simple", tsquery(words))
    document: sa.ColumnElement[Any] = sa.literal_column("share_search_entry.document")
    return (
        _entries,
        document.bool_op("@@")(query),
        -sa.func.ts_rank(document, query),
    )


def search_shared(
    *, session: Session, actor: Actor, words: list[str], limit: int, offset: int
) -> list[SharedHit]:
    """The titles and steps of the conversations shared with `actor` that match every word,
    best first. Their own links are theirs to find in their own conversations."""
    require_person(actor)
    if not words:
        return []
    source, condition, rank = _match(session, words)
    teams = sorted({actor.team, *actor.teams} - {""})
    readers = col(Share.audience) == ShareAudience.company.value
    if teams:
        readers = sa.or_(
            readers,
            sa.and_(col(Share.audience) == ShareAudience.team.value, col(Share.team).in_(teams)),
        )
    statement = (
        sa.select(
            col(Share.id),
            col(Share.title),
            col(Share.owner_name),
            _entries.c.step_number,
            _entries.c.body,
        )
        .select_from(source.join(Share, col(Share.id) == _entries.c.share_id))
        .where(
            condition,
            readers,
            col(Share.revoked_at).is_(None),
            col(Share.expires_at) > utcnow(),
            sa.not_(sa.and_(col(Share.owner_kind) == actor.kind, col(Share.owner_id) == actor.id)),
        )
        .order_by(rank, col(Share.created_at).desc(), _entries.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        SharedHit(
            share_id=row.id,
            title=row.title,
            owner_name=row.owner_name,
            step_number=row.step_number,
            snippet=snippet_of(row.body, words),
        )
        for row in session.connection().execute(statement)
    ]
