"""The BigQuery MCP server against the real emulator: tables, notes, dry runs, guarded queries."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.cloud import bigquery
from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session
from mcp.types import CallToolResult, TextContent

from mcp_servers.bigquery.emulator import EmulatorProcess
from mcp_servers.bigquery.server import QueryLimits, build_server
from tests.support.analyst import DAILY_POSTS_SQL


class CountingClient:
    """The official client, with every HTTP request it sends to the emulator counted."""

    def __init__(self, warehouse: EmulatorProcess) -> None:
        self.client = warehouse.client()
        self.requests: list[str] = []
        self.client._http.hooks["response"].append(self._count)

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.requests.append(f"{response.request.method} {response.request.url}")


@pytest.fixture
def counting(warehouse: EmulatorProcess) -> CountingClient:
    return CountingClient(warehouse)


@pytest.fixture
async def session(
    warehouse: EmulatorProcess, counting: CountingClient
) -> AsyncIterator[ClientSession]:
    server = build_server(settings=warehouse.settings, client=counting.client)
    async with create_connected_server_and_client_session(server) as client_session:
        yield client_session


def _error(result: CallToolResult) -> str:
    assert result.isError, result
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


@pytest.mark.anyio
async def test_the_tables_and_their_notes_are_listed_for_the_model(session: ClientSession) -> None:
    listed = await session.call_tool("list_tables", {})
    assert listed.structuredContent is not None
    tables = {row["table"]: row for row in listed.structuredContent["result"]}
    assert set(tables) == {
        "marketplace.categories",
        "marketplace.chats",
        "marketplace.posts",
        "marketplace.transactions",
        "marketplace.users",
    }
    assert tables["marketplace.categories"]["rows"] == 20

    described = await session.call_tool("describe_table", {"table": "posts"})
    assert described.structuredContent is not None
    columns = {c["name"]: c for c in described.structuredContent["columns"]}
    assert columns["deleted_at"]["mode"] == "NULLABLE"
    assert "soft" in described.structuredContent["notes"].lower()
    outside = await session.call_tool("describe_table", {"table": "secrets.salaries"})
    assert "outside the datasets you may read" in _error(outside)


@pytest.mark.anyio
async def test_a_query_returns_the_same_rows_as_bigquery_with_its_cost(
    session: ClientSession, warehouse: EmulatorProcess
) -> None:
    expected = [dict(row.items()) for row in warehouse.client().query(DAILY_POSTS_SQL).result()]
    result = await session.call_tool("run_query", {"sql": DAILY_POSTS_SQL})
    assert not result.isError, result
    answer = result.structuredContent
    assert answer is not None
    assert [(r["day"], r["posts"]) for r in answer["rows"]] == [
        (row["day"].isoformat(), row["posts"]) for row in expected
    ]
    assert len(answer["rows"]) == 7
    assert [c["name"] for c in answer["columns"]] == ["day", "posts"]
    assert answer["job_id"] and answer["truncated"] is False

    planned = await session.call_tool("dry_run_query", {"sql": DAILY_POSTS_SQL})
    assert planned.structuredContent is not None
    assert planned.structuredContent["tables"] == ["switchboard-local.marketplace.posts"]
    assert planned.structuredContent["bytes_processed"] > 0
    assert planned.structuredContent["within_limit"] is True


@pytest.mark.anyio
async def test_only_max_rows_come_back_and_the_result_says_it_was_cut(
    session: ClientSession,
) -> None:
    sql = "SELECT post_id FROM marketplace.posts ORDER BY post_id"
    result = await session.call_tool("run_query", {"sql": sql, "max_rows": 5})
    assert result.structuredContent is not None
    assert [row["post_id"] for row in result.structuredContent["rows"]] == [1, 2, 3, 4, 5]
    assert result.structuredContent["truncated"] is True


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE marketplace.posts",
        "DELETE FROM marketplace.posts WHERE TRUE",
        "MERGE marketplace.posts t USING marketplace.posts s ON FALSE "
        "WHEN NOT MATCHED THEN INSERT ROW",
        "INSERT INTO marketplace.posts SELECT * FROM marketplace.posts",
        "CREATE TABLE marketplace.copy AS SELECT * FROM marketplace.posts",
        "EXPORT DATA OPTIONS(uri='gs://x/*.csv', format='CSV') AS SELECT * FROM marketplace.posts",
        "CALL marketplace.cleanup()",
        "EXECUTE IMMEDIATE 'DROP TABLE marketplace.posts'",
        "BEGIN DELETE FROM marketplace.posts WHERE TRUE; END",
        "SELECT 1; DROP TABLE marketplace.posts",
        "SELECT 1 /* harmless */; dRoP/**/TABLE marketplace.posts",
        "sElEcT 1;\n-- just a comment\nDeLeTe FROM marketplace.posts WHERE TRUE",
        "SELECT * FROM secrets.salaries",
    ],
    ids=[
        "drop",
        "delete",
        "merge",
        "insert-select",
        "create-table-as",
        "export-data",
        "call",
        "execute-immediate",
        "script",
        "select-then-drop",
        "comment-obfuscated",
        "case-obfuscated",
        "outside-dataset",
    ],
)
@pytest.mark.anyio
async def test_a_refused_query_never_reaches_the_warehouse_and_the_data_is_unchanged(
    session: ClientSession, counting: CountingClient, warehouse: EmulatorProcess, sql: str
) -> None:
    before = _post_count(warehouse)
    for tool in ("dry_run_query", "run_query"):
        result = await session.call_tool(tool, {"sql": sql})
        assert f"Error executing tool {tool}: Query refused:" in _error(result)
    assert counting.requests == []
    assert _post_count(warehouse) == before


def _post_count(warehouse: EmulatorProcess) -> int:
    rows = warehouse.client().query("SELECT COUNT(*) AS n FROM marketplace.posts").result()
    return int(next(iter(rows))["n"])


@pytest.mark.anyio
async def test_a_query_over_the_byte_limit_is_refused_with_the_reason(
    warehouse: EmulatorProcess,
) -> None:
    server = build_server(settings=warehouse.settings, limits=QueryLimits(max_bytes=10_000))
    async with create_connected_server_and_client_session(server) as small:
        result = await small.call_tool("run_query", {"sql": "SELECT * FROM marketplace.posts"})
        message = _error(result)
        assert "over the limit of 10,000" in message and "Select fewer columns" in message
        fine = await small.call_tool("run_query", {"sql": "SELECT 1 AS one"})
        assert not fine.isError


def test_the_client_is_the_official_one() -> None:
    assert bigquery.Client.__module__.startswith("google.cloud.bigquery")
