"""The batch writers against real databases, on SQLite and on PostgreSQL: a row the database
refuses is set aside without holding back the others, rows wait while the database is down and
are written when it returns, within a bound, and what is left at shutdown is tried again."""

import asyncio
import logging
import threading

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import Session

from hub.core.batch_writer import BatchWriter, WriterFigures
from hub.core.db import get_engine, migrate
from hub.mcp.registry import ToolCallEntry
from hub.models.mcp_server import McpServer, McpToolCall
from hub.services.service_accounts import ensure_service
from hub.services.usage import UsageEntry, UsageRecorder
from tests.support.outage import database_down

pytestmark = pytest.mark.anyio

WRITER_LOG = "hub.core.batch_writer"


def _service_id(url: str) -> int:
    migrate(url)
    with Session(get_engine(url)) as session:
        service = ensure_service(session=session, name="billing", team="finance", token="t" * 40)
        assert service.id is not None
        return service.id


def _entry(service_id: int, marker: int, **changes: object) -> UsageEntry:
    """A usage row told apart from the others by its `attempts` (`marker`)."""
    entry = UsageEntry(
        service_id=service_id,
        service_name="billing",
        team="finance",
        model="test-model",
        deployment="local",
        stream=False,
        attempts=marker,
    )
    for name, value in changes.items():
        setattr(entry, name, value)
    return entry


def _stored_markers(url: str) -> list[int]:
    with get_engine(url).connect() as connection:
        rows = connection.execute(text("SELECT attempts FROM usagerecord ORDER BY id"))
        return [row[0] for row in rows]


def _writer_engine(url: str) -> Engine:
    """The engine the writer uses. On SQLite a locked database is waited for only briefly, so
    that a lock held by another connection makes a write fail now (the hub waits 30 s)."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 0.05})
    return get_engine(url)


async def test_rows_the_database_refuses_are_set_aside_and_every_other_row_is_written(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service_id = _service_id(database_url)
    postgres = database_url.startswith("postgresql")
    recorder = UsageRecorder(get_engine(database_url), flush_interval_s=60, max_pending=1000)
    long_name = "b" * 300  # the column holds 100 characters
    bad = {
        # A lone surrogate (JSON may carry one) cannot be encoded for either database.
        3: _entry(service_id, 3, error="broken \ud800 text"),
        # A service the database does not have.
        5: _entry(service_id + 1000, 5),
        # Too long for its column: PostgreSQL refuses it; SQLite does not check lengths.
        8: _entry(service_id, 8, service_name=long_name),
        # PostgreSQL's text holds no NUL character (an MCP server's error message may).
        10: _entry(service_id, 10, error="nul \x00 here"),
    }
    for marker in range(12):
        recorder.add(bad.get(marker) or _entry(service_id, marker))
    refused = [3, 5, 8, 10] if postgres else [3, 5]

    with caplog.at_level(logging.ERROR, logger=WRITER_LOG):
        await recorder.flush()

    expected_written = [marker for marker in range(12) if marker not in refused]
    assert _stored_markers(database_url) == expected_written
    set_aside = recorder.set_aside_rows()
    assert [row.entry.attempts for row in set_aside] == refused
    reasons = {row.entry.attempts: row.reason for row in set_aside}
    assert "surrogates not allowed" in reasons[3]
    assert "foreign key" in reasons[5].lower()
    if postgres:
        assert reasons[8] == "value too long for type character varying(100)"
        assert reasons[10] == "PostgreSQL text fields cannot contain NUL (0x00) bytes"
    logged = [record.getMessage() for record in caplog.records if record.name == WRITER_LOG]
    assert len(logged) == len(refused)
    assert all(message.startswith("the database refused a usage row") for message in logged)
    if postgres:
        assert f"service_name={long_name[:60]!r}... (300 characters)" in logged[2]
    assert recorder.figures() == WriterFigures(
        name="usage",
        pending=0,
        written=len(expected_written),
        set_aside=len(refused),
        dropped=0,
    )

    # The writer does not stall on them: the rows after them are written.
    for marker in range(12, 17):
        recorder.add(_entry(service_id, marker))
    await recorder.flush()
    assert _stored_markers(database_url) == [*expected_written, *range(12, 17)]
    assert recorder.figures().written == len(expected_written) + 5
    await recorder.close()


async def test_a_tool_call_with_a_tool_name_longer_than_its_column_does_not_hold_back_others(
    database_url: str,
) -> None:
    migrate(database_url)
    engine = get_engine(database_url)
    with Session(engine) as session:
        server = McpServer(
            slug="weather", name="Weather", team="weather", url="http://x", created_by="bo"
        )
        session.add(server)
        session.commit()
        server_id = server.id
    assert server_id is not None
    calls: BatchWriter[ToolCallEntry] = BatchWriter(
        engine, McpToolCall, 60, name="mcp_tool_calls", max_pending=100
    )
    tools = ["get_weather", "t" * 201, "get_forecast", "get_alerts"]  # the column holds 200
    for tool in tools:
        calls.add(ToolCallEntry(server_id=server_id, tool=tool, caller="bo"))
    # SQLite does not check lengths: there the long name is stored as it is.
    refused = [tools[1]] if database_url.startswith("postgresql") else []

    await calls.flush()

    # A call of a server deleted before its row was written is refused on both.
    calls.add(ToolCallEntry(server_id=server_id + 1, tool="get_tides", caller="bo"))
    calls.add(ToolCallEntry(server_id=server_id, tool="get_rain", caller="bo"))
    await calls.flush()
    refused.append("get_tides")
    tools += ["get_tides", "get_rain"]

    with engine.connect() as connection:
        stored = connection.execute(text("SELECT tool FROM mcp_tool_call ORDER BY id"))
        assert [row[0] for row in stored] == [tool for tool in tools if tool not in refused]
    assert [row.entry.tool for row in calls.set_aside_rows()] == refused
    assert calls.figures() == WriterFigures(
        name="mcp_tool_calls",
        pending=0,
        written=len(tools) - len(refused),
        set_aside=len(refused),
        dropped=0,
    )
    await calls.close()


async def test_rows_wait_while_the_database_is_down_and_are_written_when_it_returns(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service_id = _service_id(database_url)
    engine = _writer_engine(database_url)
    recorder = UsageRecorder(engine, flush_interval_s=60, max_pending=1000)
    recorder.add(_entry(service_id, 0))
    await recorder.flush()

    with caplog.at_level(logging.WARNING, logger=WRITER_LOG), database_down(database_url):
        for marker in range(1, 8):
            recorder.add(_entry(service_id, marker))
        await recorder.flush()
        assert recorder.figures().pending == 7
        for marker in range(8, 11):
            recorder.add(_entry(service_id, marker))
        await recorder.flush()
        assert recorder.figures() == WriterFigures(
            name="usage", pending=10, written=1, set_aside=0, dropped=0
        )
    await recorder.flush()

    assert _stored_markers(database_url) == list(range(11))
    assert recorder.figures() == WriterFigures(
        name="usage", pending=0, written=11, set_aside=0, dropped=0
    )
    logged = [record.getMessage() for record in caplog.records if record.name == WRITER_LOG]
    # Once when the database stopped taking rows, not at every flush; once when it took them.
    assert len(logged) == 2
    assert logged[0].startswith("could not write 7 usage rows (")
    assert logged[1].startswith("the database takes usage rows again")
    await recorder.close()
    engine.dispose()


async def test_past_its_bound_the_writer_drops_the_oldest_rows_and_counts_them(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service_id = _service_id(database_url)
    engine = _writer_engine(database_url)
    bound, added = 10, 25
    recorder = UsageRecorder(engine, flush_interval_s=60, max_pending=bound)

    loop = asyncio.get_running_loop()
    arrived = threading.Event()

    def add_the_rest() -> None:
        for marker in range(6, added):
            recorder.add(_entry(service_id, marker))
        arrived.set()

    def while_writing(*_: object) -> None:
        # In the writer's thread, as it connects: the other rows arrive on the event loop
        # while the first six are out being written.
        if not arrived.is_set():
            loop.call_soon_threadsafe(add_the_rest)
            arrived.wait(timeout=10)

    event.listen(engine, "do_connect", while_writing)
    with caplog.at_level(logging.WARNING, logger=WRITER_LOG), database_down(database_url):
        for marker in range(6):
            recorder.add(_entry(service_id, marker))
        await recorder.flush()
        assert arrived.is_set()
        assert recorder.figures().pending == bound
        assert recorder.figures().dropped == added - bound
        await recorder.flush()
    event.remove(engine, "do_connect", while_writing)
    await recorder.flush()

    assert _stored_markers(database_url) == list(range(added - bound, added))
    assert recorder.figures() == WriterFigures(
        name="usage", pending=0, written=bound, set_aside=0, dropped=added - bound
    )
    drops = [r.getMessage() for r in caplog.records if "drop" in r.getMessage()]
    assert drops == [
        f"more than {bound} usage rows are waiting for the database; dropping the oldest",
        f"dropped {added - bound} usage rows in all while the database did not take them",
    ]
    await recorder.close()
    engine.dispose()


async def test_closing_while_the_database_is_down_tries_again_then_says_how_many_rows_are_lost(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service_id = _service_id(database_url)
    engine = _writer_engine(database_url)
    recorder = UsageRecorder(engine, flush_interval_s=60, max_pending=1000)
    await recorder.start()
    for marker in range(4):
        recorder.add(_entry(service_id, marker))

    with caplog.at_level(logging.ERROR, logger=WRITER_LOG), database_down(database_url):
        await recorder.close(deadline_s=1.0)

    assert caplog.records[-1].getMessage() == (
        "lost 4 usage rows: the database did not take them within 1.0 s of shutting down"
    )
    assert recorder.figures().pending == 4
    assert _stored_markers(database_url) == []
    engine.dispose()


async def test_closing_writes_what_is_queued(database_url: str) -> None:
    service_id = _service_id(database_url)
    recorder = UsageRecorder(get_engine(database_url), flush_interval_s=60, max_pending=1000)
    await recorder.start()
    for marker in range(3):
        recorder.add(_entry(service_id, marker))
    await recorder.close()
    assert _stored_markers(database_url) == [0, 1, 2]
