"""Full-text search of one's own conversations (migration 0021, app/search.py), on SQLite and
on PostgreSQL: 2,000 generated conversations (20,000 messages) of four people."""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date

import chainlit as cl
import pytest
from chainlit.context import init_http_context
from chainlit.types import Pagination, ThreadFilter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.data_layer import SwitchboardDataLayer, async_database_url
from app.history import reply_metadata
from app.search import SearchHit, SearchQuery, search_conversations
from hub.core.db import get_engine, migrate
from hub.core.full_text import words_of
from tests.support.conversations import (
    ANALYST,
    MODELS,
    SERVER,
    Conversation,
    generate,
    store,
)

pytestmark = pytest.mark.anyio

PLANTED = "quokka"
OTHERS_WORD = "wombat"
HOSTILE = [
    '"',
    'quokka"',
    "quokka OR 1=1",
    "'; DROP TABLE steps; --",
    "NEAR(quokka",
    "quokka*",
    "^quokka",
    "body:quokka",
    "(((",
    "!&|:*",
    "quokka AND NOT",
    "\\",
    "%_",
    "' OR '1'='1",
    "\x00quokka",
    "quokka -revenue",
    "{body} : quokka",
    "'quokka':* | 'revenue'",
]


def _tokens(value: str) -> set[str]:
    return set(re.findall(r"[^\W_]+", value.lower()))


def _entries(conversation: Conversation) -> list[tuple[str | None, str]]:
    """(step id or None for the title, indexed text) of a conversation, as the test sees it."""
    entries: list[tuple[str | None, str]] = [(None, conversation.title)]
    for message in conversation.messages:
        entries.append((message.id, f"{message.input} {message.text}"))
    return entries


def _expected(
    corpus: list[Conversation], owner: str, words: list[str]
) -> set[tuple[str, str | None]]:
    return {
        (conversation.id, step_id)
        for conversation in corpus
        if conversation.owner == owner
        for step_id, body in _entries(conversation)
        if set(words) <= _tokens(body)
    }


async def _every_hit(engine: AsyncEngine, owner: str, query: SearchQuery) -> list[SearchHit]:
    hits: list[SearchHit] = []
    while page := await search_conversations(engine, owner, query, limit=100, offset=len(hits)):
        hits += page
    return hits


@pytest.fixture
async def async_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_database_url(database_url)[0])
    yield engine
    await engine.dispose()


@pytest.fixture
def corpus() -> Iterator[list[Conversation]]:
    conversations = generate(2000)
    adas = [conversation for conversation in conversations if conversation.owner == "ada"]
    # The planted word in five of ada's conversations: in a title, a question, an answer, the
    # SQL of an analyst's query, and a result of that query.
    with_tools = [c for c in adas if any(m.type == "tool" for m in c.messages)]
    adas[7].title += f" {PLANTED.capitalize()}"
    adas[101].messages[2].text += f" a {PLANTED}, then"
    adas[250].messages[-1].text = f"{PLANTED}: " + adas[250].messages[-1].text
    tool = next(m for m in with_tools[3].messages if m.type == "tool")
    tool.input = tool.input.replace("FROM sales", f"FROM {PLANTED}_sales")
    tool = next(m for m in with_tools[60].messages if m.type == "tool")
    tool.text = f'[["{PLANTED}", 3]]'
    bobs = [conversation for conversation in conversations if conversation.owner == "bob"]
    bobs[42].messages[0].text += f" {OTHERS_WORD}"
    yield conversations


async def test_search_finds_exactly_ones_own_matches_with_filters_and_paging(
    database_url: str, async_engine: AsyncEngine, corpus: list[Conversation]
) -> None:
    migrate(database_url)
    store(get_engine(database_url), corpus)
    assert sum(len(c.messages) for c in corpus) >= 20_000

    planted = _expected(corpus, "ada", [PLANTED])
    by_id = {c.id: c for c in corpus}
    assert len({thread for thread, _ in planted}) == 5
    hits = await search_conversations(
        async_engine, "ada", SearchQuery([PLANTED]), limit=50, offset=0
    )
    assert {(hit.thread_id, hit.step_id) for hit in hits} == planted
    assert all(PLANTED in hit.snippet.lower() for hit in hits)
    titles = {c.id: c.title for c in corpus}
    assert {hit.thread_name for hit in hits} == {titles[thread] for thread, _ in planted}
    # The last word may be the start of one.
    started = await search_conversations(
        async_engine, "ada", SearchQuery(["quok"]), limit=50, offset=0
    )
    assert {(hit.thread_id, hit.step_id) for hit in started} == planted
    # Chainlit's sidebar search: the same five conversations, newest first.
    layer = SwitchboardDataLayer(database_url)
    try:
        listed = await layer.list_threads(
            Pagination(first=20), ThreadFilter(userId="user-ada", search=PLANTED)
        )
    finally:
        await layer.close()
    newest_first = sorted(
        {thread for thread, _ in planted},
        key=lambda thread: max(m.created_at for m in by_id[thread].messages),
        reverse=True,
    )
    assert [thread["id"] for thread in listed.data] == newest_first

    # Someone else's word is not found; its owner finds it.
    assert (
        await search_conversations(
            async_engine, "ada", SearchQuery([OTHERS_WORD]), limit=50, offset=0
        )
        == []
    )
    bobs = await search_conversations(
        async_engine, "bob", SearchQuery([OTHERS_WORD]), limit=50, offset=0
    )
    assert {(hit.thread_id, hit.step_id) for hit in bobs} == _expected(corpus, "bob", [OTHERS_WORD])
    assert len(bobs) == 1

    # Filters pick conversations by what answered in them and the message by its date.
    for model in MODELS:
        found = await search_conversations(
            async_engine, "ada", SearchQuery([PLANTED], model=model), limit=50, offset=0
        )
        assert {(h.thread_id, h.step_id) for h in found} == {
            hit for hit in planted if by_id[hit[0]].model == model
        }
    for agent, server in ((ANALYST, None), (None, SERVER)):
        found = await search_conversations(
            async_engine,
            "ada",
            SearchQuery([PLANTED], agent=agent, server=server),
            limit=50,
            offset=0,
        )
        assert {(h.thread_id, h.step_id) for h in found} == {
            hit for hit in planted if by_id[hit[0]].agent == ANALYST
        }
        assert found
    nobody = await search_conversations(
        async_engine, "ada", SearchQuery([PLANTED], agent="nobody"), limit=50, offset=0
    )
    assert nobody == []
    dates = {
        (c.id, step_id): (
            c.created_at
            if step_id is None
            else next(m.created_at for m in c.messages if m.id == step_id)
        )
        for c in corpus
        for step_id in [None, *(m.id for m in c.messages)]
    }
    planted_days = sorted(date.fromisoformat(dates[hit][:10]) for hit in planted)
    since, until = planted_days[1], planted_days[3]
    found = await search_conversations(
        async_engine, "ada", SearchQuery([PLANTED], since=since, until=until), limit=50, offset=0
    )
    assert {(h.thread_id, h.step_id) for h in found} == {
        hit for hit in planted if since <= date.fromisoformat(dates[hit][:10]) <= until
    }
    assert len(found) >= 3

    # A common word, paged through: every match once; two words: both in the same text.
    for words in (["revenue"], ["revenue", "tango"], ["sales"]):
        every = await _every_hit(async_engine, "cyd", SearchQuery(words))
        assert len(every) == len({(h.thread_id, h.step_id) for h in every})
        assert {(h.thread_id, h.step_id) for h in every} == _expected(corpus, "cyd", words)
        assert len(every) > 50

    # Hostile input gives results or nothing, never an error, and changes nothing.
    for typed in HOSTILE:
        found = await search_conversations(
            async_engine, "ada", SearchQuery(words_of(typed)), limit=50, offset=0
        )
        assert {(h.thread_id, h.step_id) for h in found} <= planted | _expected(
            corpus, "ada", ["revenue"]
        ), typed
    async with async_engine.connect() as connection:
        count = await connection.scalar(text("SELECT COUNT(*) FROM steps"))
    assert count == sum(len(c.messages) for c in corpus)


async def test_the_index_follows_what_the_chat_writes_and_answers_the_sidebar(
    database_url: str,
    async_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate(database_url)
    layer = SwitchboardDataLayer(database_url)

    async def found(
        owner: str, words: str, model: str | None = None
    ) -> list[tuple[str, str | None]]:
        query = SearchQuery(words_of(words), model=model)
        hits = await search_conversations(async_engine, owner, query, limit=20, offset=0)
        return [(hit.thread_id, hit.step_id) for hit in hits]

    try:
        ada = await layer.create_user(cl.User(identifier="ada"))
        bob = await layer.create_user(cl.User(identifier="bob"))
        assert ada is not None and bob is not None
        thread_id = str(uuid.uuid4())
        init_http_context(thread_id=thread_id)
        question = cl.Message(
            content="Which platypus sold best?", author="ada", type="user_message"
        )
        await layer.create_step(question.to_dict())
        await layer.update_thread(thread_id, name="Platypus sales", user_id=ada.id)
        answer = cl.Message(content="", author="gpt-4o", metadata=reply_metadata("gpt-4o"))
        await layer.create_step(answer.to_dict())
        # The reply as it streams, then whole.
        await layer.update_step_output(answer.id, "The echidna")
        assert await found("ada", "echidna") == [(thread_id, answer.id)]
        answer.content = "The echidna, by far."
        await layer.create_step(answer.to_dict())
        assert await found("ada", "far") == [(thread_id, answer.id)]
        assert set(await found("ada", "platypus")) == {(thread_id, question.id), (thread_id, None)}
        assert await found("ada", "platypus", model="gpt-4o") != []
        assert await found("ada", "platypus", model="claude") == []
        assert await found("bob", "platypus") == []

        # Chainlit's sidebar search (the data layer's list_threads) from the index.
        other = str(uuid.uuid4())
        init_http_context(thread_id=other)
        note = cl.Message(content="Nothing about that animal", author="ada", type="user_message")
        await layer.create_step(note.to_dict())
        await layer.update_thread(other, name="Other", user_id=ada.id)
        listed = await layer.list_threads(
            Pagination(first=20), ThreadFilter(userId=ada.id, search="PLATYPUS")
        )
        assert [(t["id"], t["name"]) for t in listed.data] == [(thread_id, "Platypus sales")]
        listed = await layer.list_threads(
            Pagination(first=20), ThreadFilter(userId=ada.id, search="an")
        )
        assert [t["id"] for t in listed.data] == [other]
        first = await layer.list_threads(
            Pagination(first=1), ThreadFilter(userId=ada.id, search="t")
        )
        assert first.pageInfo.hasNextPage and len(first.data) == 1
        rest = await layer.list_threads(
            Pagination(first=1, cursor=first.data[0]["id"]), ThreadFilter(userId=ada.id, search="t")
        )
        assert {first.data[0]["id"], rest.data[0]["id"]} == {thread_id, other}
        assert not rest.pageInfo.hasNextPage
        for typed in HOSTILE:
            listed = await layer.list_threads(
                Pagination(first=20), ThreadFilter(userId=ada.id, search=typed)
            )
            assert {t["id"] for t in listed.data} <= {thread_id, other}
        assert (
            await layer.list_threads(
                Pagination(first=20), ThreadFilter(userId=bob.id, search="platypus")
            )
        ).data == []

        # Renamed, the title is found by its new name; deleted, nothing is left to find.
        await layer.update_thread(thread_id, name="Monotremes")
        assert await found("ada", "monotremes") == [(thread_id, None)]
        assert await found("ada", "sales") == []
        await layer.delete_thread(thread_id)
        assert await found("ada", "platypus") == []
        assert await found("ada", "echidna") == []
        async with async_engine.connect() as connection:
            left = await connection.scalar(
                text("SELECT COUNT(*) FROM chat_search_entry WHERE thread_id = :id"),
                {"id": thread_id},
            )
        assert left == 0
        # Chainlit logs failed SQL as a warning and carries on; here that would be data lost.
        assert [r.getMessage() for r in caplog.records if "error occurred" in r.getMessage()] == []
    finally:
        await layer.close()


async def test_conversations_stored_before_the_index_are_indexed_by_its_migration(
    database_url: str, async_engine: AsyncEngine
) -> None:
    migrate(database_url, revision="0020")
    corpus = generate(12)
    corpus[5].messages[1].text += f" {PLANTED}"
    store(get_engine(database_url), corpus)
    migrate(database_url)
    hits = await search_conversations(
        async_engine, corpus[5].owner, SearchQuery([PLANTED]), limit=20, offset=0
    )
    assert [(hit.thread_id, hit.step_id) for hit in hits] == [
        (corpus[5].id, corpus[5].messages[1].id)
    ]
    every = await _every_hit(async_engine, "ada", SearchQuery(["sales"]))
    assert {(h.thread_id, h.step_id) for h in every} == _expected(corpus, "ada", ["sales"])
