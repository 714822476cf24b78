"""The data-model MCP server and its notes: in memory through the SDK, over real HTTP, and the
example SQL of every page checked with sqlglot when it is installed."""

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import create_connected_server_and_client_session
from mcp.types import CallToolResult, TextContent, TextResourceContents
from pydantic import AnyUrl

from mcp_servers.datamodel import DEFAULT_DOCS_DIR, build_server
from tests.support.servers import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = ["categories", "chats", "posts", "transactions", "users"]
AMSTERDAM = "Europe/Amsterdam"
_COLUMN_ROW = re.compile(r"^\| `(\w+)` \| (\w+) \|", re.MULTILINE)
_SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def page_text(slug: str) -> str:
    return (DEFAULT_DOCS_DIR / f"{slug}.md").read_text(encoding="utf-8")


def documented_columns(table: str) -> dict[str, str]:
    """Column name to type, from the `## Columns` table of the table's page."""
    columns = page_text(table).split("## Columns", 1)[1].split("\n## ", 1)[0]
    return dict(_COLUMN_ROW.findall(columns))


def example_queries() -> list[tuple[str, int, str]]:
    """(page, index, sql) for every ```sql block of every page."""
    return [
        (path.stem, index, sql)
        for path in sorted(DEFAULT_DOCS_DIR.glob("*.md"))
        for index, sql in enumerate(_SQL_BLOCK.findall(path.read_text(encoding="utf-8")))
    ]


@pytest.fixture
async def client() -> AsyncIterator[ClientSession]:
    async with create_connected_server_and_client_session(build_server()) as session:
        yield session


def error_text(result: CallToolResult) -> str:
    assert result.isError
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


def test_there_is_an_overview_and_one_page_per_table():
    assert sorted(path.stem for path in DEFAULT_DOCS_DIR.glob("*.md")) == sorted(
        [*TABLES, "overview"]
    )


@pytest.mark.parametrize("table", TABLES)
def test_each_table_page_has_columns_joins_pitfalls_and_three_example_queries(table: str):
    text = page_text(table)

    assert text.startswith(f"# marketplace.{table}: ")
    for heading in ("## Columns", "## Joins", "## Pitfalls", "## Example questions"):
        assert f"\n{heading}\n" in text, heading
    assert len(documented_columns(table)) >= 3
    examples = text.split("## Example questions", 1)[1]
    assert len(_SQL_BLOCK.findall(examples)) >= 3
    assert examples.count("\n### ") == len(_SQL_BLOCK.findall(examples))


@pytest.mark.anyio
async def test_the_server_offers_three_read_only_tools_with_typed_inputs(client: ClientSession):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == {"search_data_model", "read_table_notes", "list_tables"}
    search = tools["search_data_model"].inputSchema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["type"] == "string"
    limit = search["properties"]["limit"]
    assert limit["type"] == "integer"
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (5, 1, 20)
    read = tools["read_table_notes"].inputSchema
    assert read["required"] == ["table"]
    assert read["properties"]["table"]["type"] == "string"
    assert tools["list_tables"].inputSchema["properties"] == {}
    for tool in tools.values():
        assert tool.description and "marketplace" in tool.description
        assert tool.outputSchema is not None
        assert tool.annotations is not None and tool.annotations.readOnlyHint


@pytest.mark.anyio
async def test_searching_for_soft_delete_finds_the_posts_page(client: ClientSession):
    result = await client.call_tool("search_data_model", {"query": "soft delete"})

    assert result.structuredContent is not None
    first = result.structuredContent["result"][0]
    assert first["page"] == "posts"
    assert "deleted_at" in first["snippet"]


@pytest.mark.anyio
async def test_searching_for_popular_category_finds_the_convention(client: ClientSession):
    result = await client.call_tool("search_data_model", {"query": "popular category"})

    assert result.structuredContent is not None
    hits = result.structuredContent["result"]
    assert (hits[0]["page"], hits[0]["section"]) == ("overview", "Popular category: which measure")
    assert "new posts" in hits[0]["snippet"]
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


@pytest.mark.anyio
async def test_an_empty_query_is_an_error_that_says_what_to_send(client: ClientSession):
    result = await client.call_tool("search_data_model", {"query": " "})

    assert "send a few keywords" in error_text(result)


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["transactions", "marketplace.transactions", "`Transactions`"])
async def test_reading_the_transactions_notes_explains_refunds(client: ClientSession, name: str):
    result = await client.call_tool("read_table_notes", {"table": name})

    assert not result.isError
    notes = result.structuredContent
    assert notes is not None
    assert notes["table"] == "transactions"
    assert notes["markdown"].startswith("# marketplace.transactions: ")
    assert "refunded" in notes["markdown"]
    assert "status = 'completed'" in notes["markdown"]


@pytest.mark.anyio
async def test_the_overview_can_be_read_like_a_table(client: ClientSession):
    result = await client.call_tool("read_table_notes", {"table": "overview"})

    assert result.structuredContent is not None
    assert "Europe/Amsterdam" in result.structuredContent["markdown"]


@pytest.mark.anyio
async def test_reading_an_unknown_table_is_an_error_that_lists_the_tables(client: ClientSession):
    result = await client.call_tool("read_table_notes", {"table": "orders"})

    text = error_text(result)
    assert "'orders'" in text
    for table in [*TABLES, "overview"]:
        assert table in text


@pytest.mark.anyio
async def test_listing_tables_gives_each_name_with_what_a_row_is(client: ClientSession):
    result = await client.call_tool("list_tables", {})

    assert result.structuredContent is not None
    tables = result.structuredContent["result"]
    assert [table["name"] for table in tables] == TABLES
    posts = next(table for table in tables if table["name"] == "posts")
    assert posts["summary"].startswith("One row per listing")
    assert all(table["summary"] and "\n" not in table["summary"] for table in tables)


@pytest.mark.anyio
async def test_each_page_is_also_a_markdown_resource(client: ClientSession):
    resources = (await client.list_resources()).resources

    assert sorted(str(r.uri) for r in resources) == sorted(
        f"datamodel://{slug}" for slug in [*TABLES, "overview"]
    )
    contents = (await client.read_resource(AnyUrl("datamodel://chats"))).contents
    assert isinstance(contents[0], TextResourceContents)
    assert contents[0].text.startswith("# marketplace.chats: ")


def test_the_server_states_the_conventions_and_names_the_tables():
    server = build_server()

    assert server.name == "datamodel"
    assert server.instructions is not None
    for phrase in ("read_table_notes", AMSTERDAM, "Past N days", "deleted_at IS NULL"):
        assert phrase in server.instructions
    assert "Tables: categories, chats, posts, transactions, users." in server.instructions


def test_the_documented_columns_match_the_warehouse_schema():
    seed = pytest.importorskip("mcp_servers.bigquery.seed", exc_type=ImportError)
    aliases = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}

    assert sorted(seed.SCHEMAS) == TABLES
    for table, fields in seed.SCHEMAS.items():
        expected = {f.name: aliases.get(f.field_type, f.field_type) for f in fields}
        assert documented_columns(table) == expected, table


@pytest.mark.parametrize(
    "sql", [pytest.param(sql, id=f"{page}-{index + 1}") for page, index, sql in example_queries()]
)
def test_an_example_query_is_bigquery_sql_over_documented_columns(sql: str):
    sqlglot = pytest.importorskip("sqlglot")
    exp = sqlglot.exp
    columns = {table: documented_columns(table) for table in TABLES}

    tree = sqlglot.parse_one(sql, read="bigquery")

    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        assert (table.db, table.name) in {("marketplace", t) for t in TABLES}, table.sql()
        assert aliases.setdefault(table.alias_or_name, table.name) == table.name, table.sql()
    for column in tree.find_all(exp.Column):
        if column.table in aliases:
            assert column.name in columns[aliases[column.table]], column.sql()
    # Days are Amsterdam days, and "past N days" always ends yesterday.
    assert not list(tree.find_all(exp.CurrentTimestamp, exp.CurrentDatetime))
    for today in tree.find_all(exp.CurrentDate):
        assert today.this is not None and today.this.name == AMSTERDAM, today.sql()
    for day in tree.find_all(exp.Date):
        if isinstance(day.this, exp.Column):
            zone = day.args.get("zone")
            assert zone is not None and zone.name == AMSTERDAM, day.sql()
    for between in tree.find_all(exp.Between):
        low, high = between.args["low"], between.args["high"]
        if isinstance(low, exp.DateSub) and isinstance(low.this, exp.CurrentDate):
            assert isinstance(high, exp.DateSub) and isinstance(high.this, exp.CurrentDate)
            assert (high.expression.name, high.unit.name) == ("1", "DAY"), between.sql()


def test_every_table_page_is_covered_by_example_queries():
    pages = [page for page, _, _ in example_queries()]

    assert {page: pages.count(page) >= 3 for page in TABLES} == dict.fromkeys(TABLES, True)


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def served_datamodel(tmp_path: Path) -> Iterator[Served]:
    """`python -m mcp_servers.datamodel` on a free loopback port."""
    port, log_path = free_port(), tmp_path / "datamodel.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_servers.datamodel", "--port", str(port)],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Served(f"http://127.0.0.1:{port}/mcp", port, process, log_path)
    finally:
        stop_process(process)


async def _wait_until_listening(served: Served) -> None:
    while True:
        if served.process.poll() is not None:
            pytest.fail(f"the data-model server exited early:\n{served.log.read_text()}")
        try:
            stream = await anyio.connect_tcp("127.0.0.1", served.port)
        except OSError:
            await anyio.sleep(0.05)
        else:
            await stream.aclose()
            return


@pytest.mark.anyio
async def test_the_cli_serves_the_notes_over_streamable_http(served_datamodel: Served):
    with anyio.fail_after(30):
        await _wait_until_listening(served_datamodel)
        async with (
            streamable_http_client(served_datamodel.url) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            listed = await session.call_tool("list_tables", {})
            found = await session.call_tool("search_data_model", {"query": "refunded revenue"})

    assert init.serverInfo.name == "datamodel"
    assert listed.structuredContent is not None
    assert [table["name"] for table in listed.structuredContent["result"]] == TABLES
    assert found.structuredContent is not None
    assert found.structuredContent["result"][0]["page"] == "transactions"
