"""What the BigQuery server does with BigQuery's own answers: the tables a dry run reports and a
query that runs past its time-out. The emulator reports neither, so these run against a
stand-in for BigQuery's REST API (`tests/support/bigquery_standin.py`) through the official
client."""

from collections.abc import Iterator

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from mcp.types import CallToolResult, TextContent

from mcp_servers.bigquery.server import MAX_LISTED_TABLES, QueryLimits, build_server
from mcp_servers.bigquery.warehouse import EMULATOR_PROJECT, WarehouseSettings
from tests.support.bigquery_standin import StandInBigQuery

POSTS = f"{EMULATOR_PROJECT}.marketplace.posts"
SQL = "SELECT category_id, COUNT(*) AS posts FROM marketplace.posts GROUP BY 1"


@pytest.fixture
def bigquery() -> Iterator[StandInBigQuery]:
    with StandInBigQuery(referenced_tables=[POSTS]) as standin:
        yield standin


def _settings(standin: StandInBigQuery) -> WarehouseSettings:
    return WarehouseSettings(emulator=standin.base_url, project=None, dataset="marketplace")


async def _call(standin: StandInBigQuery, tool: str, limits: QueryLimits) -> CallToolResult:
    server = build_server(settings=_settings(standin), limits=limits)
    async with create_connected_server_and_client_session(server) as session:
        return await session.call_tool(tool, {"sql": SQL})


def _error(result: CallToolResult) -> str:
    assert result.isError, result
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


@pytest.mark.anyio
async def test_a_query_whose_dry_run_reads_another_dataset_is_refused_before_it_runs(
    bigquery: StandInBigQuery,
) -> None:
    # A view in the allowed dataset, say, that reads a table of another one.
    salaries = f"{EMULATOR_PROJECT}.hr.salaries"
    bigquery.referenced_tables = [POSTS, salaries, "other-project.marketplace.posts"]

    for tool in ("dry_run_query", "run_query"):
        message = _error(await _call(bigquery, tool, QueryLimits()))
        assert (
            "Query refused: BigQuery reports that it reads other-project.marketplace.posts, "
            f"{salaries}, outside the allowed datasets (marketplace)"
        ) in message

    assert bigquery.dry_runs == [SQL, SQL]
    assert bigquery.jobs == []


@pytest.mark.anyio
async def test_a_query_whose_dry_run_reads_only_allowed_tables_goes_on(
    bigquery: StandInBigQuery,
) -> None:
    planned = await _call(bigquery, "dry_run_query", QueryLimits())

    assert not planned.isError, planned
    assert planned.structuredContent is not None
    assert planned.structuredContent["bytes_processed"] == bigquery.bytes_processed


@pytest.mark.anyio
async def test_a_query_that_reads_more_tables_than_bigquery_lists_is_refused(
    bigquery: StandInBigQuery,
) -> None:
    shards = [f"{EMULATOR_PROJECT}.marketplace.events_{day:03}" for day in range(60)]
    bigquery.referenced_tables = shards[:MAX_LISTED_TABLES]

    message = _error(await _call(bigquery, "run_query", QueryLimits()))

    assert f"it reads {MAX_LISTED_TABLES} tables or more" in message
    assert bigquery.jobs == []


@pytest.mark.anyio
async def test_a_query_that_runs_past_its_time_out_is_cancelled_in_bigquery(
    bigquery: StandInBigQuery,
) -> None:
    message = _error(await _call(bigquery, "run_query", QueryLimits(timeout_s=1)))

    assert "ran past the time-out of 1 s and was cancelled in BigQuery" in message
    assert len(bigquery.jobs) == 1
    assert bigquery.cancelled == bigquery.jobs
    # jobs.cancel needs the job's location, which only BigQuery's answer gave (none is set).
    assert bigquery.cancel_locations == ["US"]


@pytest.mark.anyio
async def test_time_travel_and_session_user_follow_the_warehouse_settings(
    bigquery: StandInBigQuery,
) -> None:
    sql = (
        "SELECT SESSION_USER() AS me, COUNT(*) AS posts FROM marketplace.posts "
        "FOR SYSTEM_TIME AS OF TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)"
    )
    default = _settings(bigquery)
    allowed = default.model_copy(update={"allow_time_travel": True, "allow_session_user": True})
    answers = []
    for settings in (default, allowed):
        server = build_server(settings=settings)
        async with create_connected_server_and_client_session(server) as session:
            answers.append(await session.call_tool("dry_run_query", {"sql": sql}))

    assert "Query refused: SESSION_USER() is not allowed here" in _error(answers[0])
    assert not answers[1].isError, answers[1]
    assert bigquery.dry_runs == [sql]
