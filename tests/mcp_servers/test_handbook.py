"""The handbook MCP server: in memory through the SDK's client session, then over real HTTP."""

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import create_connected_server_and_client_session
from mcp.types import CallToolResult, TextContent, TextResourceContents
from pydantic import AnyUrl

from mcp_servers.handbook import DEFAULT_DOCS_DIR, build_server

SHIPPED_SLUGS = sorted(path.stem for path in DEFAULT_DOCS_DIR.glob("*.md"))


@pytest.fixture
async def client() -> AsyncIterator[ClientSession]:
    async with create_connected_server_and_client_session(build_server()) as session:
        yield session


def error_text(result: CallToolResult) -> str:
    assert result.isError
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


def test_the_shipped_handbook_has_titled_pages_of_a_useful_length():
    assert len(SHIPPED_SLUGS) >= 5
    for slug in SHIPPED_SLUGS:
        lines = (DEFAULT_DOCS_DIR / f"{slug}.md").read_text().splitlines()
        assert lines[0].startswith("# ")
        assert 40 <= len(lines) <= 100, slug


@pytest.mark.anyio
async def test_the_server_offers_three_read_only_tools_with_typed_inputs(client: ClientSession):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == {"search_handbook", "read_handbook_page", "list_handbook_pages"}
    search = tools["search_handbook"].inputSchema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["type"] == "string"
    limit = search["properties"]["limit"]
    assert limit["type"] == "integer"
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (5, 1, 20)
    assert tools["read_handbook_page"].inputSchema["required"] == ["slug"]
    assert tools["list_handbook_pages"].inputSchema["properties"] == {}
    for tool in tools.values():
        assert tool.description and "handbook" in tool.description
        assert tool.outputSchema is not None
        assert tool.annotations is not None and tool.annotations.readOnlyHint


@pytest.mark.anyio
async def test_searching_for_a_fact_puts_the_page_that_holds_it_first(client: ClientSession):
    result = await client.call_tool("search_handbook", {"query": "hotel nightly cap"})

    assert not result.isError
    assert result.structuredContent is not None
    hits = result.structuredContent["result"]
    assert hits[0]["slug"] == "expenses-and-travel"
    assert hits[0]["title"] == "Expenses and Travel"
    assert hits[0]["section"] == "Booking travel"
    assert "EUR 180" in hits[0]["snippet"]
    assert hits[0]["score"] > 0
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


@pytest.mark.anyio
async def test_a_search_honours_its_limit(client: ClientSession):
    result = await client.call_tool("search_handbook", {"query": "leave days", "limit": 2})

    assert result.structuredContent is not None
    assert len(result.structuredContent["result"]) == 2


@pytest.mark.anyio
async def test_a_search_that_matches_nothing_returns_no_hits_rather_than_an_error(
    client: ClientSession,
):
    result = await client.call_tool("search_handbook", {"query": "xylophone zeppelin"})

    assert not result.isError
    assert result.structuredContent == {"result": []}


@pytest.mark.anyio
async def test_an_empty_query_is_an_error_that_says_what_to_send(client: ClientSession):
    result = await client.call_tool("search_handbook", {"query": "   "})

    assert "send a few keywords" in error_text(result)


@pytest.mark.anyio
async def test_reading_a_page_returns_its_title_and_markdown(client: ClientSession):
    result = await client.call_tool("read_handbook_page", {"slug": "holidays-and-leave"})

    assert not result.isError
    page = result.structuredContent
    assert page is not None
    assert page["slug"] == "holidays-and-leave"
    assert page["title"] == "Holidays and Leave"
    assert page["markdown"].startswith("# Holidays and Leave\n")
    assert "27 days of paid annual leave" in page["markdown"]


@pytest.mark.anyio
async def test_reading_an_unknown_page_is_an_error_that_lists_the_valid_slugs(
    client: ClientSession,
):
    result = await client.call_tool("read_handbook_page", {"slug": "pension-plan"})

    text = error_text(result)
    assert "pension-plan" in text
    for slug in SHIPPED_SLUGS:
        assert slug in text


@pytest.mark.anyio
async def test_listing_pages_gives_each_slug_with_its_title_and_summary(client: ClientSession):
    result = await client.call_tool("list_handbook_pages", {})

    assert result.structuredContent is not None
    pages = result.structuredContent["result"]
    assert [page["slug"] for page in pages] == SHIPPED_SLUGS
    on_call = next(page for page in pages if page["slug"] == "on-call-and-incidents")
    assert on_call["title"] == "On-call and Incidents"
    assert on_call["summary"].startswith("How engineers share on-call duty")
    assert "\n" not in on_call["summary"]


@pytest.mark.anyio
async def test_each_page_is_also_a_markdown_resource(client: ClientSession):
    resources = (await client.list_resources()).resources

    assert sorted(str(r.uri) for r in resources) == [f"handbook://{s}" for s in SHIPPED_SLUGS]
    assert {r.mimeType for r in resources} == {"text/markdown"}
    contents = (await client.read_resource(AnyUrl("handbook://security-and-access"))).contents
    assert isinstance(contents[0], TextResourceContents)
    assert contents[0].text.startswith("# Security and Access Requests\n")


def test_the_server_introduces_itself_and_names_its_pages():
    server = build_server()

    assert server.name == "handbook"
    assert server.instructions is not None
    assert "search_handbook" in server.instructions
    assert "Expenses and Travel (expenses-and-travel)" in server.instructions


@pytest.mark.anyio
async def test_a_server_can_be_built_over_another_directory_of_pages(tmp_path: Path):
    (tmp_path / "garden-rules.md").write_text(
        "# Garden Rules\n\nHow we keep the roof garden.\n\n## Watering\n\nWater the basil daily.\n"
    )
    async with create_connected_server_and_client_session(build_server(tmp_path)) as session:
        result = await session.call_tool("search_handbook", {"query": "basil"})

    assert result.structuredContent is not None
    [hit] = result.structuredContent["result"]
    assert (hit["slug"], hit["section"]) == ("garden-rules", "Watering")
    assert hit["snippet"] == "Water the basil daily."


def test_building_over_a_directory_without_pages_fails_with_the_reason(tmp_path: Path):
    with pytest.raises(ValueError, match=r"holds no \.md pages"):
        build_server(tmp_path)


@pytest.mark.anyio
async def test_the_cli_serves_the_handbook_over_streamable_http(served_handbook: str):
    with anyio.fail_after(30):
        async with (
            streamable_http_client(served_handbook) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("search_handbook", {"query": "on-call pay"})

    assert init.serverInfo.name == "handbook"
    assert {tool.name for tool in tools.tools} >= {"search_handbook", "read_handbook_page"}
    assert result.structuredContent is not None
    first = result.structuredContent["result"][0]
    assert (first["slug"], first["section"]) == ("on-call-and-incidents", "Pay and time off")
    assert "EUR 300" in first["snippet"]
