"""Chainlit's data layer on the tables of migration 0002, on SQLite and on PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chainlit as cl
import pytest
from alembic import command
from alembic.config import Config
from chainlit.context import init_http_context
from chainlit.types import Feedback, Pagination, ThreadFilter
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from sqlalchemy import inspect
from sqlmodel import Session, select

from agents.checkpoint import open_checkpointer
from agents.hub_client import HubClient
from agents.tracing.records import RunRecord, TraceBatch
from app.data_layer import SwitchboardDataLayer, async_database_url
from app.file_store import LocalFileStore
from app.history import (
    CUT_OFF_MARKER,
    CUT_OFF_NOTE,
    cut_off_reply,
    reply_metadata,
    to_openai_messages,
)
from app.turns import AgentHost
from app.unfinished_reply import UnfinishedReply
from hub.core.db import MIGRATIONS_DIR, get_engine, migrate
from hub.models.trace import TraceRun
from hub.services.traces import record_batch
from tests.conftest import RunningHub

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHAT_TABLES = {"users", "threads", "steps", "elements", "feedbacks"}


def _at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("sync_url", "expected"),
    [
        (
            "sqlite:////srv/data/switchboard.db",
            ("sqlite+aiosqlite:////srv/data/switchboard.db", False),
        ),
        (
            "postgresql+psycopg://sb:pw@db:5432/switchboard",
            ("postgresql+asyncpg://sb:pw@db:5432/switchboard", False),
        ),
        (
            "postgresql://sb:pw@db/switchboard?sslmode=require",
            ("postgresql+asyncpg://sb:pw@db/switchboard", True),
        ),
    ],
)
def test_the_hubs_database_url_gets_its_async_driver(
    sync_url: str, expected: tuple[str, bool]
) -> None:
    assert async_database_url(sync_url) == expected


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        async_database_url("mysql://db/switchboard")


def test_the_chat_tables_migration_goes_down_and_up_again(database_url: str) -> None:
    migrate(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["configure_logger"] = False

    def tables() -> set[str]:
        return set(inspect(get_engine(database_url)).get_table_names())

    assert CHAT_TABLES <= tables()
    command.downgrade(config, "0001")
    assert not CHAT_TABLES & tables()
    assert "hub_user" in tables()
    command.upgrade(config, "head")
    assert CHAT_TABLES <= tables()


async def test_a_conversation_is_stored_listed_for_its_owner_resumed_and_deleted(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Chainlit would build its own data layer from DATABASE_URL when no app registers one.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate(database_url)
    layer = SwitchboardDataLayer(database_url)
    try:
        thread_id = str(uuid.uuid4())
        init_http_context(thread_id=thread_id)
        ada = await layer.create_user(cl.User(identifier="ada", metadata={"hub_user_id": 1}))
        bob = await layer.create_user(cl.User(identifier="bob"))
        assert ada is not None and bob is not None
        assert ada.metadata == {"hub_user_id": 1}

        question = cl.Message(content="What is 2+2?", author="ada", type="user_message")
        question.created_at = _at(0)
        answer = cl.Message(content="4", author="test-model", metadata=reply_metadata("test-model"))
        answer.created_at = _at(1)
        await layer.create_step(question.to_dict())
        # The thread gets its owner, name and chat-profile tag from Chainlit at first message.
        await layer.update_thread(
            thread_id, name="What is 2+2?", user_id=ada.id, tags=["test-model"]
        )
        await layer.create_step(answer.to_dict())
        await layer.update_thread(thread_id, metadata={"model": "test-model"})
        await layer.upsert_feedback(Feedback(forId=answer.id, value=1, threadId=thread_id))

        listed = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=ada.id))
        assert [(t["id"], t["name"], t["tags"]) for t in listed.data] == [
            (thread_id, "What is 2+2?", ["test-model"])
        ]
        others = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=bob.id))
        assert others.data == []
        assert await layer.get_thread_author(thread_id) == "ada"

        thread = await layer.get_thread(thread_id)
        assert thread is not None
        assert thread["metadata"] == {"model": "test-model"}
        steps = thread["steps"]
        assert [(s["type"], s["output"]) for s in steps] == [
            ("user_message", "What is 2+2?"),
            ("assistant_message", "4"),
        ]
        assert steps[1]["metadata"] == reply_metadata("test-model")
        assert steps[1]["feedback"] is not None and steps[1]["feedback"]["value"] == 1
        # What Chainlit rebuilds on resume is what the next turn sends to the model.
        resumed = [cl.Message.from_dict(step) for step in steps]
        assert to_openai_messages(resumed) == [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
        ]

        await layer.delete_thread(thread_id)
        assert await layer.get_thread(thread_id) is None
        # Chainlit logs failed SQL as a warning and carries on; here that would be data lost.
        assert [r.getMessage() for r in caplog.records if "error occurred" in r.getMessage()] == []
    finally:
        await layer.close()


async def test_a_reply_is_stored_as_it_streams_marked_cut_off_until_it_is_sent_whole(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate(database_url)
    layer = SwitchboardDataLayer(database_url)
    try:
        thread_id = str(uuid.uuid4())
        init_http_context(thread_id=thread_id)
        question = cl.Message(content="A story?", author="ada", type="user_message")
        question.created_at = _at(0)
        await layer.create_step(question.to_dict())
        reply = cl.Message(content="", author="test-model", metadata=reply_metadata("test-model"))
        # Every token stored, for the test; the chat stores at most once a second.
        unfinished = UnfinishedReply(reply, layer, every_s=0)

        async def stored() -> tuple[list[cl.Message], dict[str, object]]:
            thread = await layer.get_thread(thread_id)
            assert thread is not None
            steps = thread["steps"]
            return [cl.Message.from_dict(step) for step in steps], dict(steps[-1]["metadata"])

        for token in ("Once", " upon", " a"):
            reply.content += token
            await unfinished.streamed()
            resumed, metadata = await stored()
            assert resumed[-1].content.startswith(reply.content + "\n\n")
            assert resumed[-1].content.endswith(CUT_OFF_NOTE)
            assert metadata == reply_metadata("test-model") | {CUT_OFF_MARKER: True}
            assert cut_off_reply(resumed) == reply.content
        assert to_openai_messages(resumed) == [
            {"role": "user", "content": "A story?"},
            {"role": "assistant", "content": "Once upon a"},
        ]

        # The end of the turn stores it whole (what `Message.send` has the data layer do).
        reply.content += " time."
        reply.created_at = _at(5)
        await layer.create_step(reply.to_dict())
        resumed, metadata = await stored()
        assert [message.content for message in resumed] == ["A story?", "Once upon a time."]
        assert metadata == reply_metadata("test-model")
        assert cut_off_reply(resumed) is None
        assert [r.getMessage() for r in caplog.records if "error occurred" in r.getMessage()] == []
    finally:
        await layer.close()


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """The hub, the chat's tables and the agent's checkpoints on one database."""
    return database_url


def _checkpoint_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def test_deleting_a_conversation_deletes_its_agent_memory_and_files_and_its_traces_expire(
    hub: RunningHub, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    files = LocalFileStore(tmp_path / "chat-files")
    kept, deleted = str(uuid.uuid4()), str(uuid.uuid4())
    async with HubClient(hub_url=hub.url, token=hub.app_token) as hub_client:
        host = AgentHost(hub=hub_client, database_url=database_url)
        layer = SwitchboardDataLayer(database_url, files=files, forget=host.forget)
        try:
            ada = await layer.create_user(cl.User(identifier="ada"))
            assert ada is not None
            attached: dict[str, Path] = {}
            for thread_id in (kept, deleted):
                init_http_context(thread_id=thread_id)
                question = cl.Message(content="Top category?", author="ada", type="user_message")
                await layer.create_step(question.to_dict())
                await layer.update_thread(thread_id, name="Top category?", user_id=ada.id)
                table = cl.File(name="answer.csv", content=b"category,posts\n", for_id=question.id)
                await layer.create_element(table)
                attached[thread_id] = files.path_of(f"{ada.id}/{table.id}/answer.csv")
            async with open_checkpointer(database_url) as saver:
                for thread_id in (kept, deleted):
                    await saver.aput(
                        _checkpoint_config(thread_id),
                        empty_checkpoint(),
                        {"source": "input", "step": -1, "parents": {}},
                        {},
                    )
            with Session(get_engine(database_url)) as session:
                for thread_id in (kept, deleted):
                    run = RunRecord(
                        id=str(uuid.uuid4()),
                        agent_slug="data-analyst",
                        agent_owner="platform",
                        agent_owner_kind="service",
                        agent_owner_id="1",
                        conversation_id=thread_id,
                        user="ada",
                        user_kind="user",
                        user_id="ada-key",
                        started_at=START,
                    )
                    record_batch(session=session, batch=TraceBatch(runs=[run]))
            assert all(path.exists() for path in attached.values())

            await layer.delete_thread(deleted)

            assert await layer.get_thread(deleted) is None
            assert await layer.get_thread(kept) is not None
            assert (attached[deleted].exists(), attached[kept].exists()) == (False, True)
            async with open_checkpointer(database_url) as saver:
                assert await saver.aget_tuple(_checkpoint_config(deleted)) is None
                assert await saver.aget_tuple(_checkpoint_config(kept)) is not None
            with Session(get_engine(database_url)) as session:
                runs = {run.conversation_id: run for run in session.exec(select(TraceRun))}
            # Kept for the hub's audit period (30 days by default), then removed there.
            assert runs[deleted].conversation_deleted_at is not None
            assert runs[kept].conversation_deleted_at is None
        finally:
            await layer.close()
            await host.close()
