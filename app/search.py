"""Full-text search over a person's own conversations, on the index of migration 0021.

The words become a query as hub/core/full_text.py says. Filters (model, agent, MCP server)
pick conversations that have such an answer or tool step; the date range picks the matching
message's date.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.core.full_text import fts5_match, snippet_of, tsquery

__all__ = [
    "MatchingThread",
    "SearchHit",
    "SearchQuery",
    "matching_threads",
    "search_conversations",
]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    words: list[str]
    model: str | None = None
    agent: str | None = None
    server: str | None = None
    since: date | None = None
    # Inclusive: messages of that whole day match.
    until: date | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    thread_id: str
    thread_name: str
    # None when the conversation's title matched.
    step_id: str | None
    snippet: str
    created_at: str


def _is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _filters(engine: AsyncEngine, query: SearchQuery) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions on `e` (the entry) and their parameters."""
    conditions: list[str] = []
    parameters: dict[str, Any] = {}
    if query.since is not None:
        conditions.append("e.created_at >= :since")
        parameters["since"] = query.since.isoformat()
    if query.until is not None:
        conditions.append("e.created_at < :until")
        parameters["until"] = (query.until + timedelta(days=1)).isoformat()
    for key in ("model", "agent"):
        value = getattr(query, key)
        if value is None:
            continue
        field = (
            f"json_extract(f.metadata, '$.{key}')"
            if _is_sqlite(engine)
            else f"f.metadata ->> '{key}'"
        )
        conditions.append(
            'EXISTS (SELECT 1 FROM steps f WHERE f."threadId" = e.thread_id '
            f"AND f.type = 'assistant_message' AND {field} = :{key})"
        )
        parameters[key] = value
    if query.server is not None:
        conditions.append(
            'EXISTS (SELECT 1 FROM steps f WHERE f."threadId" = e.thread_id '
            "AND f.type = 'tool' AND substr(f.name, 1, length(:tool_prefix)) = :tool_prefix)"
        )
        parameters["tool_prefix"] = f"{query.server} · "
    return conditions, parameters


def _matches(engine: AsyncEngine, words: list[str]) -> tuple[str, str, str, dict[str, Any]]:
    """FROM clause, condition and rank (lower is better) of the entries matching `words`."""
    if _is_sqlite(engine):
        return (
            "chat_search JOIN chat_search_entry e ON e.id = chat_search.rowid",
            "chat_search MATCH :match",
            "bm25(chat_search)",
            {"match": fts5_match(words)},
        )
    return (
        "chat_search_entry e",
        "e.document @@ to_tsquery('simple', :match)",
        "-ts_rank(e.document, to_tsquery('simple', :match))",
        {"match": tsquery(words)},
    )


async def search_conversations(
    engine: AsyncEngine, owner: str, query: SearchQuery, *, limit: int, offset: int
) -> list[SearchHit]:
    """The messages and titles of `owner`'s conversations (by user identifier) that match,
    best first."""
    if not query.words:
        return []
    source, condition, rank, parameters = _matches(engine, query.words)
    conditions, filter_parameters = _filters(engine, query)
    where = " AND ".join([condition, 't."userIdentifier" = :owner', *conditions])
    statement = text(
        f"SELECT e.thread_id, t.name AS thread_name, e.step_id, e.created_at, e.body "
        f"FROM {source} JOIN threads t ON t.id = e.thread_id WHERE {where} "
        f"ORDER BY {rank}, e.created_at DESC, e.id LIMIT :limit OFFSET :offset"
    )
    async with engine.connect() as connection:
        rows = await connection.execute(
            statement,
            {**parameters, **filter_parameters, "owner": owner, "limit": limit, "offset": offset},
        )
        return [
            SearchHit(
                thread_id=str(row.thread_id),
                thread_name=str(row.thread_name or ""),
                step_id=None if row.step_id is None else str(row.step_id),
                snippet=snippet_of(str(row.body), query.words),
                created_at=str(row.created_at or ""),
            )
            for row in rows
        ]


@dataclass(frozen=True, slots=True)
class MatchingThread:
    """A conversation's row as stored (tags and metadata as the database returns them)."""

    id: str
    created_at: str
    name: str | None
    user_id: str | None
    user_identifier: str | None
    tags: Any
    metadata: Any


async def matching_threads(
    engine: AsyncEngine, user_id: str, words: list[str], *, feedback: int | None = None
) -> list[MatchingThread]:
    """The conversations of `user_id` (Chainlit's user id) with a title, message or tool step
    matching every word (and, when given, a message rated `feedback`), the most recently
    active first."""
    if not words:
        return []
    source, condition, _, parameters = _matches(engine, words)
    rated = (
        ""
        if feedback is None
        else 'AND EXISTS (SELECT 1 FROM feedbacks r WHERE r."threadId" = t.id '
        "AND r.value = :feedback) "
    )
    statement = text(
        'SELECT t.id, t."createdAt" AS created_at, t.name, t."userId" AS user_id, '
        't."userIdentifier" AS user_identifier, t.tags, t.metadata FROM threads t '
        f'WHERE t."userId" = :user_id {rated}AND t.id IN '
        f"(SELECT e.thread_id FROM {source} WHERE {condition}) "
        'ORDER BY (SELECT MAX(s."createdAt") FROM steps s WHERE s."threadId" = t.id) DESC '
        'NULLS LAST, t."createdAt" DESC'
    )
    async with engine.connect() as connection:
        if feedback is not None:
            parameters["feedback"] = feedback
        rows = await connection.execute(statement, {**parameters, "user_id": user_id})
        return [
            MatchingThread(
                id=str(row.id),
                created_at=str(row.created_at or ""),
                name=row.name,
                user_id=row.user_id,
                user_identifier=row.user_identifier,
                tags=row.tags,
                metadata=row.metadata,
            )
            for row in rows
        ]
