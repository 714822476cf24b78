"""The tree of a conversation's turns (app/branches.py), and the data layer showing its chosen
branch and forgetting every branch's memory, on SQLite and PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chainlit as cl
import pytest
from chainlit.context import init_http_context
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from sqlmodel import Session, select

from agents.checkpoint import open_checkpointer
from agents.hub_client import HubClient
from agents.tracing.records import RunRecord, TraceBatch
from app.branches import ROOT, TREE_KEY, TurnTree
from app.data_layer import SwitchboardDataLayer
from app.file_store import LocalFileStore
from app.history import reply_metadata
from app.turns import AgentHost
from hub.core.db import get_engine, migrate
from hub.models.trace import TraceRun
from hub.services.traces import record_batch
from tests.conftest import RunningHub

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _tree(*pairs: tuple[str, str]) -> TurnTree:
    tree = TurnTree()
    for turn, parent in pairs:
        tree.follow([*_ancestors(tree, parent), turn])
    return tree


def _ancestors(tree: TurnTree, turn: str) -> list[str]:
    path: list[str] = []
    while turn != ROOT:
        path.insert(0, turn)
        turn = tree.parents[turn]
    return path


def test_the_newest_branch_shows_until_another_is_chosen_and_each_branch_has_its_memory() -> None:
    # one → two → three, then "two" edited (twoB), then "three" regenerated (threeB).
    tree = _tree(("one", ROOT), ("two", "one"), ("three", "two"), ("twoB", "one"))
    assert tree.path() == ["one", "twoB"]
    assert tree.siblings("two") == ["two", "twoB"]

    tree.choose("two")
    assert tree.path() == ["one", "two", "three"]
    tree.follow(["one", "two", "threeB"])
    assert tree.path() == ["one", "two", "threeB"]
    assert tree.siblings("threeB") == ["three", "threeB"]

    keys = {turn: tree.memory_key("c", turn) for turn in tree.parents}
    assert keys["one"] == keys["two"] == keys["three"] == "c"
    assert keys["twoB"] == "c~twoB"
    assert keys["threeB"] == "c~threeB"
    # A turn after a branch's first turn goes on in that branch's memory.
    tree.follow(["one", "twoB", "four"])
    assert tree.memory_key("c", "four") == "c~twoB"
    assert tree.memory_keys("c") == {"c", "c~twoB", "c~threeB"}


def test_a_branch_memory_key_fits_the_hubs_trace_records() -> None:
    conversation, first, second = (str(uuid.uuid4()) for _ in range(3))
    tree = _tree((first, ROOT), (second, ROOT))
    key = tree.memory_key(conversation, second)
    assert key.startswith(conversation + "~")
    assert len(key) <= TraceRun.model_fields["conversation_id"].metadata[0].max_length


def test_the_stored_tree_survives_a_round_trip_and_malformed_parts_are_left_out() -> None:
    tree = _tree(("one", ROOT), ("two", "one"), ("twoB", "one"))
    tree.choose("two")
    again = TurnTree.from_metadata({TREE_KEY: tree.to_metadata()})
    assert (again.parents, again.chosen, again.path()) == (
        tree.parents,
        tree.chosen,
        ["one", "two"],
    )

    hostile = {
        TREE_KEY: {
            "turns": [
                ["one", ""],
                ["two", "nowhere"],
                "x",
                [1, ""],
                ["one", "one"],
                ["three", "one"],
            ],
            "chosen": {"": "three", "one": "three", "two": 5},
        }
    }
    kept = TurnTree.from_metadata(hostile)
    assert kept.parents == {"one": ROOT, "three": "one"}
    assert kept.chosen == {"one": "three"}
    assert TurnTree.from_metadata("not a dict").parents == {}
    assert TurnTree.from_metadata({TREE_KEY: ["nope"]}).parents == {}


def _message(text: str, seconds: int, *, user: bool) -> cl.Message:
    if user:
        message = cl.Message(content=text, author="ada", type="user_message")
    else:
        message = cl.Message(content=text, author="test-model", metadata=reply_metadata("m"))
    message.created_at = (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return message


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """The hub, the chat's tables and the agent's checkpoints on one database."""
    return database_url


def _checkpoint_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


@pytest.mark.anyio
async def test_a_conversation_opens_on_its_chosen_branch_and_deleting_it_forgets_every_branch(
    hub: RunningHub, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate(database_url)
    files = LocalFileStore(tmp_path / "chat-files")
    async with HubClient(hub_url=hub.url, token=hub.app_token) as hub_client:
        host = AgentHost(hub=hub_client, database_url=database_url)
        layer = SwitchboardDataLayer(database_url, files=files, forget=host.forget)
        try:
            thread_id = str(uuid.uuid4())
            init_http_context(thread_id=thread_id)
            ada = await layer.create_user(cl.User(identifier="ada"))
            assert ada is not None
            texts = [
                ("one", True),
                ("answer 1", False),
                ("two", True),
                ("answer 2", False),
                ("three", True),
                ("answer 3", False),
                ("two, edited", True),
                ("answer 4", False),
            ]
            stored = [_message(text, at, user=user) for at, (text, user) in enumerate(texts)]
            for message in stored:
                await layer.create_step(message.to_dict())
            await layer.update_thread(thread_id, name="one", user_id=ada.id)
            table = cl.File(name="old.csv", content=b"a,b\n", for_id=stored[5].id)
            await layer.create_element(table)
            one, two, three, edited = (stored[at].id for at in (0, 2, 4, 6))
            tree = TurnTree()
            tree.follow([one, two, three])
            tree.follow([one, edited])
            await layer.save_turn_tree(thread_id, tree)

            def shown(thread: object) -> list[str]:
                assert isinstance(thread, dict)
                return [step["output"] for step in thread["steps"]]

            thread = await layer.get_thread(thread_id)
            assert shown(thread) == ["one", "answer 1", "two, edited", "answer 4"]
            assert thread is not None and thread["elements"] == []

            tree.choose(two)
            await layer.save_turn_tree(thread_id, tree)
            # Chainlit writes a session's metadata back when its browser goes: a copy of the
            # tree read when that session began must not undo the choice made since.
            stale = TurnTree()
            stale.follow([one, edited])
            await layer.update_thread(
                thread_id, metadata={TREE_KEY: stale.to_metadata(), "model": "other-model"}
            )
            thread = await layer.get_thread(thread_id)
            assert shown(thread) == [text for text, _ in texts[:6]]
            assert thread is not None and thread["metadata"] is not None
            assert thread["metadata"]["model"] == "other-model"
            assert [element["name"] for element in thread["elements"] or []] == ["old.csv"]
            assert (await layer.turn_tree(thread_id)).path() == [one, two, three]

            # Each branch's memory and runs, then the conversation deleted.
            keys = tree.memory_keys(thread_id)
            assert len(keys) == 2
            async with open_checkpointer(database_url) as saver:
                for key in keys:
                    await saver.aput(
                        _checkpoint_config(key),
                        empty_checkpoint(),
                        {"source": "input", "step": -1, "parents": {}},
                        {},
                    )
            with Session(get_engine(database_url)) as session:
                for key in keys:
                    run = RunRecord(
                        id=str(uuid.uuid4()),
                        agent_slug="chat",
                        agent_owner="platform",
                        agent_owner_kind="service",
                        agent_owner_id="1",
                        conversation_id=key,
                        user="ada",
                        user_kind="user",
                        user_id="ada-key",
                        started_at=START,
                    )
                    record_batch(session=session, batch=TraceBatch(runs=[run]))

            await layer.delete_thread(thread_id)

            assert await layer.get_thread(thread_id) is None
            async with open_checkpointer(database_url) as saver:
                for key in keys:
                    assert await saver.aget_tuple(_checkpoint_config(key)) is None
            with Session(get_engine(database_url)) as session:
                runs = list(session.exec(select(TraceRun)))
            assert sorted(str(run.conversation_id) for run in runs) == sorted(keys)
            assert all(run.conversation_deleted_at is not None for run in runs)
        finally:
            await layer.close()
            await host.close()
