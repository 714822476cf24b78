"""Importing conversations on SQLite and PostgreSQL stores all of a file or nothing: bad input
(empty, damaged, unknown, too large) is refused with a clear message before anything is
written, and a write the database refuses halfway leaves no conversation behind."""

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator

import chainlit as cl
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.conversation_import import ImportRefused, parse_import, store_import
from app.data_layer import SwitchboardDataLayer
from hub.core.db import migrate

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024
POISON = "the database refuses this message"


def _claude(*titles_and_texts: tuple[str, str]) -> bytes:
    return json.dumps(
        [
            {
                "uuid": str(uuid.uuid4()),
                "name": title,
                "created_at": "2026-02-01T10:00:00Z",
                "chat_messages": [
                    {"sender": "human", "text": said, "created_at": "2026-02-01T10:00:00Z"},
                    {"sender": "assistant", "text": f"About {title}.", "created_at": None},
                ],
            }
            for title, said in titles_and_texts
        ]
    ).encode()


@pytest.fixture
async def layer(database_url: str) -> AsyncIterator[SwitchboardDataLayer]:
    migrate(database_url)
    layer = SwitchboardDataLayer(database_url)
    await layer.create_user(cl.User(identifier="bob"))
    try:
        yield layer
    finally:
        await layer.close()


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        threads = (await connection.execute(text("SELECT COUNT(*) FROM threads"))).scalar_one()
        steps = (await connection.execute(text("SELECT COUNT(*) FROM steps"))).scalar_one()
        return int(threads), int(steps)


async def _refuse_poison(engine: AsyncEngine) -> None:
    """A rule of the database's own that refuses one message, as a full disk or a lost
    connection would refuse a write."""
    async with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON steps "
                    f"WHEN NEW.output = '{POISON}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.output = '{POISON}' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON steps "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )


async def test_an_import_is_stored_whole_or_not_at_all(layer: SwitchboardDataLayer) -> None:
    bob = await layer.get_user("bob")
    assert bob is not None
    good = parse_import(
        _claude(("Kites", "How do kites fly?"), ("Bees", "Do bees sleep?")), max_bytes=LIMIT
    )
    ids = await store_import(layer.engine, good, user_id=bob.id, identifier="bob", person="bob")
    assert len(ids) == 2
    assert await _counts(layer.engine) == (2, 4)

    await _refuse_poison(layer.engine)
    poisoned = parse_import(
        _claude(("Owls", "Why do owls hoot?"), ("Moles", POISON), ("Eels", "Where do eels go?")),
        max_bytes=LIMIT,
    )
    assert len(poisoned.conversations) == 3
    with pytest.raises(Exception, match="refused"):
        await store_import(layer.engine, poisoned, user_id=bob.id, identifier="bob", person="bob")
    # Neither Owls (written before the refused message) nor Eels: as before the import.
    assert await _counts(layer.engine) == (2, 4)
    async with layer.engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM threads"))).scalars().all()
    assert sorted(names) == ["Bees", "Kites"]


def _zip(name: str, content: bytes) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(name, content)
    return archive.getvalue()


BAD_INPUT = [
    (b"", 422, "The file is empty."),
    (b"  \n", 422, "The file is empty."),
    (b'[{"mapping": {', 422, "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", 422, "not valid JSON"),
    (b"[]", 422, "holds no conversations"),
    (b'{"hello": "world"}', 422, "not a format the chat imports"),
    (b'[{"messages": []}]', 422, "not a format the chat imports"),
    (b"PK\x03\x04 not really a zip", 422, "damaged zip"),
    (_zip("notes.txt", b"hello"), 422, "holds no conversations.json"),
    (b"[" + b" " * LIMIT + b"]", 413, "the most an import takes"),
    # Small packed, over the limit unpacked.
    (_zip("conversations.json", b"[" + b" " * (LIMIT * 4) + b"]"), 413, "unpacked"),
    (
        b'{"format": "switchboard.conversations", "version": 7, "conversations": []}',
        422,
        "version",
    ),
]


async def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(
    layer: SwitchboardDataLayer,
) -> None:
    for data, status, message in BAD_INPUT:
        with pytest.raises(ImportRefused) as refused:
            parse_import(data, max_bytes=LIMIT)
        assert message in str(refused.value), data[:40]
        assert refused.value.status == status, data[:40]
    assert await _counts(layer.engine) == (0, 0)


async def test_conversations_that_cannot_be_read_are_reported_and_the_rest_imported(
    layer: SwitchboardDataLayer,
) -> None:
    document = json.loads(_claude(("Kites", "How do kites fly?")))
    document += [
        {"uuid": "x", "name": "Broken", "chat_messages": "not a list"},
        "not a conversation",
        {"uuid": "y", "name": "Silent", "chat_messages": [{"sender": "human", "text": ""}]},
    ]
    parsed = parse_import(json.dumps(document).encode(), max_bytes=LIMIT)
    assert [title for title, _, _ in parsed.report.imported] == ["Kites"]
    assert parsed.report.refused == [
        ("Broken", "it has no messages (no 'chat_messages')"),
        ("conversation 3", "it is not a conversation"),
        ("Silent", "it has no messages with text"),
    ]
    bob = await layer.get_user("bob")
    assert bob is not None
    await store_import(layer.engine, parsed, user_id=bob.id, identifier="bob", person="bob")
    assert await _counts(layer.engine) == (1, 2)
