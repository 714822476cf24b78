"""Chainlit's SQLAlchemy data layer on Switchboard's database (tables from migration 0002).

Chainlit writes with raw SQL and hands values to the driver as they are. Two adjustments
make that work the same on SQLite and PostgreSQL: dict values (step `modes`, element
`playerConfig`) are sent as JSON text, and on SQLite list values (thread and step `tags`)
are too, since only PostgreSQL has an array type. On the way back, JSON text is decoded
so threads look the same whichever database they came from.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.step import StepDict
from chainlit.types import PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from sqlalchemy.engine import make_url

from app.branches import TREE_KEY, TurnTree, shown_branch
from app.history import REPLY_MARKER
from app.search import matching_threads
from app.sharing import SHARE_COMMAND
from hub.core.full_text import words_of

__all__ = ["RatedAnswer", "StoredFeedback", "SwitchboardDataLayer", "async_database_url"]

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}
_POSTGRES_DRIVERS = {
    "postgres",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "postgresql+asyncpg",
}
# libpq's sslmode values that ask for TLS; asyncpg takes an ssl context instead.
_SSL_MODES = {"require", "verify-ca", "verify-full"}


def async_database_url(url: str) -> tuple[str, bool]:
    """The async twin of the hub's sync SQLAlchemy URL, and whether TLS is required."""
    parsed = make_url(url)
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(False), False
    if parsed.drivername in _POSTGRES_DRIVERS:
        query = dict(parsed.query)
        sslmode = query.pop("sslmode", None)
        parsed = parsed.set(drivername="postgresql+asyncpg", query=query)
        return parsed.render_as_string(False), sslmode in _SSL_MODES
    raise ValueError(f"unsupported database for the chat app: {parsed.drivername}")


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _decode_step(step: StepDict) -> None:
    for key in ("metadata", "generation", "tags"):
        if key in step:
            step[key] = _decoded(step[key])


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    for_id: str
    # Chainlit's: 1 up, 0 down.
    value: int
    comment: str
    owner: str | None


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    thread_id: str
    message_id: str
    # What the chat stored with the answer: model, or agent, version and trace.
    metadata: dict[str, Any]


class SwitchboardDataLayer(SQLAlchemyDataLayer):
    """`forget`, when given, is called with a conversation's id before it is deleted, for what
    is kept of it outside these tables (the agent's checkpoints, the hub's traces)."""

    def __init__(
        self,
        database_url: str,
        files: BaseStorageClient | None = None,
        forget: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._forget = forget
        conninfo, ssl_require = async_database_url(database_url)
        self._is_sqlite = conninfo.startswith("sqlite")
        # SQLite: wait for the hub's writers instead of failing with "database is locked".
        connect_args = {"timeout": 30} if self._is_sqlite else {}
        super().__init__(
            conninfo=conninfo,
            connect_args=connect_args,
            ssl_require=ssl_require,
            storage_provider=files,
        )

    def _adapt(self, value: Any) -> Any:
        if isinstance(value, dict) or (isinstance(value, list) and self._is_sqlite):
            return json.dumps(value)
        return value

    async def execute_sql(
        self, query: str, parameters: dict[str, Any]
    ) -> list[dict[str, Any]] | int | None:
        adapted = {key: self._adapt(value) for key, value in parameters.items()}
        return await super().execute_sql(query=query, parameters=adapted)

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Chainlit's own updates (name, owner, tags) leave an existing thread's metadata alone.

        The parent class rewrites the metadata it read a moment earlier on every update, so
        Chainlit naming the thread in the background could undo settings the app had just
        stored with it.
        """
        if metadata is not None and TREE_KEY in metadata:
            # Only `save_turn_tree` writes it: a session's copy read at its start is stale.
            metadata = {key: value for key, value in metadata.items() if key != TREE_KEY}
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if user_id is not None:
            changes["userId"] = user_id
            changes["userIdentifier"] = await self._get_user_identifer_by_id(user_id)
        if tags is not None:
            changes["tags"] = tags
        exists = await self.execute_sql(
            query='SELECT "id" FROM threads WHERE "id" = :id', parameters={"id": thread_id}
        )
        if metadata is not None or not exists:
            await super().update_thread(thread_id, name, user_id, metadata, tags)
            return
        if changes:
            assignments = ", ".join(f'"{column}" = :{column}' for column in changes)
            await self.execute_sql(
                query=f'UPDATE threads SET {assignments} WHERE "id" = :id',
                parameters={**changes, "id": thread_id},
            )

    async def delete_thread(self, thread_id: str) -> None:
        """The conversation, its steps, feedback and attached files (Chainlit's part), after
        what is kept of it elsewhere: should that fail, the conversation is still there to
        delete again, rather than gone with its memory and traces left behind."""
        if self._forget is not None:
            for key in sorted((await self.turn_tree(thread_id)).memory_keys(thread_id)):
                await self._forget(key)
        await super().delete_thread(thread_id)

    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        """The conversation with the steps of its chosen branch only (app/branches.py)."""
        thread = await super().get_thread(thread_id)
        return shown_branch(thread) if thread is not None else None

    async def turn_tree(self, thread_id: str) -> TurnTree:
        rows = await self.execute_sql(
            query='SELECT "metadata" FROM threads WHERE "id" = :id', parameters={"id": thread_id}
        )
        metadata = _decoded(rows[0]["metadata"]) if isinstance(rows, list) and rows else None
        return TurnTree.from_metadata(metadata)

    async def save_turn_tree(self, thread_id: str, tree: TurnTree) -> None:
        await super().update_thread(thread_id, metadata={TREE_KEY: tree.to_metadata()})

    async def get_all_user_threads(
        self, user_id: str | None = None, thread_id: str | None = None
    ) -> list[ThreadDict] | None:
        threads = await super().get_all_user_threads(user_id=user_id, thread_id=thread_id)
        for thread in threads or []:
            thread["metadata"] = _decoded(thread["metadata"]) or {}
            thread["tags"] = _decoded(thread["tags"])
            for step in thread["steps"]:
                _decode_step(step)
        return threads

    async def list_threads(
        self, pagination: Pagination, filters: ThreadFilter
    ) -> PaginatedResponse[ThreadDict]:
        """The sidebar's search answered from the full-text index (app/search.py) rather than
        by reading every conversation; a search without words finds nothing."""
        if not filters.search or not filters.userId:
            return await super().list_threads(pagination, filters)
        found = await matching_threads(
            self.engine, filters.userId, words_of(filters.search), feedback=filters.feedback
        )
        ids = [thread.id for thread in found]
        start = ids.index(pagination.cursor) + 1 if pagination.cursor in ids else 0
        page = found[start : start + pagination.first]
        threads: list[ThreadDict] = [
            {
                "id": thread.id,
                "createdAt": thread.created_at,
                "name": thread.name,
                "userId": thread.user_id,
                "userIdentifier": thread.user_identifier,
                "tags": _decoded(thread.tags),
                "metadata": _decoded(thread.metadata) or {},
                "steps": [],
                "elements": [],
            }
            for thread in page
        ]
        return PaginatedResponse(
            pageInfo=PageInfo(
                hasNextPage=len(found) > start + pagination.first,
                startCursor=page[0].id if page else None,
                endCursor=page[-1].id if page else None,
            ),
            data=threads,
        )

    async def create_step(self, step_dict: StepDict) -> None:
        # The Share command is an instruction to the chat, not part of the conversation.
        if step_dict.get("command") == SHARE_COMMAND:
            return
        await super().create_step(step_dict)

    async def update_step_output(self, step_id: str, output: str) -> None:
        """One UPDATE of a stored step's text (a reply as it streams), nothing else read or
        written."""
        await self.execute_sql(
            query='UPDATE steps SET "output" = :output WHERE "id" = :id',
            parameters={"output": output, "id": step_id},
        )

    async def get_step(self, step_id: str) -> StepDict | None:
        step = await super().get_step(step_id)
        if step is not None:
            _decode_step(step)
        return step

    async def thread_of_step(self, step_id: str) -> tuple[str, str | None] | None:
        """The conversation a step is in and the key of the person it belongs to."""
        rows = await self.execute_sql(
            query='SELECT t."id" AS thread_id, t."userIdentifier" AS owner FROM steps s '
            'JOIN threads t ON t."id" = s."threadId" WHERE s."id" = :id',
            parameters={"id": step_id},
        )
        if not isinstance(rows, list) or not rows:
            return None
        return str(rows[0]["thread_id"]), rows[0]["owner"]

    async def stored_feedback(self, feedback_id: str) -> StoredFeedback | None:
        """A feedback as Chainlit stored it, with the key of the person whose conversation
        holds the step it rates."""
        rows = await self.execute_sql(
            query='SELECT f."forId" AS for_id, f."value" AS value, f."comment" AS comment, '
            't."userIdentifier" AS owner FROM feedbacks f '
            'JOIN steps s ON s."id" = f."forId" JOIN threads t ON t."id" = s."threadId" '
            'WHERE f."id" = :id',
            parameters={"id": feedback_id},
        )
        if not isinstance(rows, list) or not rows:
            return None
        row = rows[0]
        return StoredFeedback(
            for_id=str(row["for_id"]),
            value=int(row["value"]),
            comment=str(row["comment"] or ""),
            owner=str(row["owner"]) if row["owner"] is not None else None,
        )

    async def rated_answer(self, step_id: str) -> RatedAnswer | None:
        """The model's or agent's answer a rating of `step_id` is about: the step itself when
        it is one, else the last answer within it (Chainlit puts the thumbs on the run of
        `on_message`, whose last message is the answer)."""
        rows = await self.execute_sql(
            query='SELECT "id", "threadId", "type", "metadata", "createdAt" FROM steps '
            'WHERE "id" = :id OR "parentId" = :id',
            parameters={"id": step_id},
        )
        answers: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        for row in rows if isinstance(rows, list) else []:
            metadata = _decoded(row["metadata"])
            if row["type"] == "assistant_message" and isinstance(metadata, dict):
                if metadata.get(REPLY_MARKER):
                    answers.append((str(row["createdAt"] or ""), str(row["id"]), row, metadata))
        if not answers:
            return None
        itself = [answer for answer in answers if answer[1] == step_id]
        _, message_id, row, metadata = (
            itself[0] if itself else max(answers, key=lambda answer: answer[:2])
        )
        return RatedAnswer(thread_id=str(row["threadId"]), message_id=message_id, metadata=metadata)
