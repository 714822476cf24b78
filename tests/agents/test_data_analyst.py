"""The data analyst end to end over real HTTP: the published agent (the repository's
instructions), a scripted model deciding the tool calls, the hub, the datamodel and BigQuery
MCP servers as real processes, the BigQuery emulator with the seeded marketplace, and the
trace in the hub's database. The numbers are checked against counts made in Python from the
raw rows."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from agents.runtime import RunResult, ToolCallFinished
from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from app.results import chart_kind, table_from
from hub.core.db import get_engine
from hub.models.trace import TraceRun, TraceStep
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.agents.test_runtime import Recorder
from tests.conftest import RunningHub
from tests.support.analyst import (
    CATEGORY_POSTS_SQL,
    DAILY_POSTS_SQL,
    AnalystSetup,
    analyst_runner,
    ask_analyst,
    expected_category_posts,
    expected_daily_posts,
    served_analyst,
)
from tests.support.upstream import ScriptedUpstream

pytestmark = pytest.mark.anyio

NEVER_ASK = QueryApproval(threshold_bytes=10**15)
ALWAYS_ASK = QueryApproval(threshold_bytes=0)


@pytest.fixture
def analyst(hub: RunningHub, warehouse: EmulatorProcess, tmp_path: Path) -> Iterator[AnalystSetup]:
    with served_analyst(hub, warehouse, tmp_path, users=["ana"]) as setup:
        yield setup


def _script_analysis(upstream: ScriptedUpstream, table: str, sql: str, answer: str) -> None:
    """The model works as its instructions say: notes, dry run, run, answer."""
    upstream.enqueue(
        tool_calls=[{"name": "datamodel__read_table_notes", "arguments": {"table": "overview"}}]
    )
    upstream.enqueue(
        tool_calls=[{"name": "datamodel__read_table_notes", "arguments": {"table": table}}]
    )
    upstream.enqueue(tool_calls=[{"name": "bigquery__dry_run_query", "arguments": {"sql": sql}}])
    upstream.enqueue(tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": sql}}])
    upstream.script(reply=answer)


async def _ask(
    hub: RunningHub,
    analyst: AnalystSetup,
    question: str,
    *,
    approval: QueryApproval = NEVER_ASK,
    approve: bool | None = None,
    recorder: Recorder | None = None,
) -> list[RunResult]:
    spec = AgentSpec.model_validate(analyst.run_spec("ana"))
    async with analyst_runner(hub) as runner:
        return await ask_analyst(
            runner, spec, question, approval=approval, approve=approve, on_event=recorder
        )


def _trace(hub: RunningHub, trace_id: str | None) -> tuple[TraceRun, list[TraceStep]]:
    assert trace_id is not None
    with Session(get_engine(hub.settings.sqlalchemy_url)) as session:
        run = session.get(TraceRun, trace_id)
        assert run is not None
        steps = session.exec(
            select(TraceStep).where(TraceStep.run_id == trace_id).order_by(col(TraceStep.seq))
        ).all()
        return run, list(steps)


def _query_rows(recorder: Recorder) -> list[dict[str, Any]]:
    """The rows of the last query the analyst ran, as the chat receives them."""
    runs = [e for e in recorder.of(ToolCallFinished) if e.tool == "run_query"]
    assert runs and not runs[-1].is_error, runs
    table = table_from(runs[-1].structured)
    assert table is not None
    return list(table.rows)


async def test_daily_post_counts_for_the_past_week_come_with_a_line_chart_and_a_trace(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup, warehouse: EmulatorProcess
) -> None:
    _script_analysis(upstream, "posts", DAILY_POSTS_SQL, "Here are the daily post counts.")
    recorder = Recorder()

    [result] = await _ask(
        hub, analyst, "Give me daily post counts for the past week", recorder=recorder
    )

    assert result.status == "ok", result
    expected = expected_daily_posts(warehouse)
    assert len(expected) == 7
    rows = _query_rows(recorder)
    assert {row["day"]: row["posts"] for row in rows} == expected
    # What the model read before it answered: the same rows.
    tool_message = upstream.requests[-1]["messages"][-1]
    assert tool_message["role"] == "tool"
    seen = json.loads(tool_message["content"])
    assert {row["day"]: row["posts"] for row in seen["rows"]} == expected
    table = table_from(
        next(e for e in recorder.of(ToolCallFinished) if e.tool == "run_query").structured
    )
    assert table is not None
    assert chart_kind(table) == ("line", "day", ["posts"])

    run, steps = _trace(hub, result.trace_id)
    assert run.status == "ok" and run.agent_slug == "data-analyst"
    assert [(s.kind, s.name) for s in steps] == [
        ("model", "test-model"),
        ("tool", "datamodel/read_table_notes"),
        ("model", "test-model"),
        ("tool", "datamodel/read_table_notes"),
        ("model", "test-model"),
        ("tool", "bigquery/dry_run_query"),
        ("model", "test-model"),
        ("tool", "bigquery/run_query"),
        ("model", "test-model"),
    ]
    notes, dry_run, query = steps[3], steps[5], steps[7]
    assert "deleted_at" in notes.output
    assert json.loads(dry_run.output)["bytes_processed"] > 0
    assert json.loads(query.output)["row_count"] == 7
    assert all(s.error is None for s in steps)


async def test_the_most_popular_category_over_ten_days_comes_with_a_bar_chart(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup, warehouse: EmulatorProcess
) -> None:
    _script_analysis(upstream, "categories", CATEGORY_POSTS_SQL, "The top category is first.")
    recorder = Recorder()

    [result] = await _ask(
        hub,
        analyst,
        "Which category was the most popular over the past 10 days?",
        recorder=recorder,
    )

    assert result.status == "ok", result
    expected = expected_category_posts(warehouse)
    rows = _query_rows(recorder)
    assert {row["category"]: row["new_posts"] for row in rows} == expected
    top = max(expected.items(), key=lambda item: item[1])
    assert (rows[0]["category"], rows[0]["new_posts"]) == top
    # The seeded skew: the winner clearly leads.
    assert top[1] > 1.5 * sorted(expected.values())[-2]
    table = table_from(
        next(e for e in recorder.of(ToolCallFinished) if e.tool == "run_query").structured
    )
    assert table is not None
    assert chart_kind(table) == ("bar", "category", ["new_posts"])
    run, steps = _trace(hub, result.trace_id)
    assert run.status == "ok" and [s.name for s in steps if s.kind == "tool"] == [
        "datamodel/read_table_notes",
        "datamodel/read_table_notes",
        "bigquery/dry_run_query",
        "bigquery/run_query",
    ]


async def _ask_daily_posts(
    hub: RunningHub,
    upstream: ScriptedUpstream,
    analyst: AnalystSetup,
    recorder: Recorder,
    *,
    approval: QueryApproval,
    approve: bool | None = None,
) -> list[RunResult]:
    """A model that runs its query straight away (no dry run of its own)."""
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": DAILY_POSTS_SQL}}]
    )
    upstream.script(reply="Here are the daily post counts.")
    return await _ask(
        hub,
        analyst,
        "Daily posts, past week",
        approval=approval,
        approve=approve,
        recorder=recorder,
    )


async def test_a_query_over_the_threshold_waits_and_runs_once_approved(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup, warehouse: EmulatorProcess
) -> None:
    recorder = Recorder()

    asked, answered = await _ask_daily_posts(
        hub, upstream, analyst, recorder, approval=ALWAYS_ASK, approve=True
    )

    assert asked.status == "waiting" and asked.approval is not None
    [query] = asked.approval.queries
    assert query.sql == DAILY_POSTS_SQL and query.bytes_processed > 0
    assert f"{query.bytes_processed:,}" not in asked.text  # said in words, not raw bytes
    assert "would scan" in asked.text and "$" in asked.text
    # Priced, asked, answered, and only then run (the trace below keeps the order).
    finished = recorder.of(ToolCallFinished)
    assert answered.status == "ok", answered
    assert [e.tool for e in finished] == ["dry_run_query", "run_query"]
    assert {r["day"]: r["posts"] for r in _query_rows(recorder)} == expected_daily_posts(warehouse)
    assert answered.trace_id == asked.trace_id
    run, steps = _trace(hub, answered.trace_id)
    assert run.status == "ok"
    assert [(s.kind, s.name) for s in steps] == [
        ("model", "test-model"),
        ("tool", "bigquery/dry_run_query"),
        ("approval", "approval asked"),
        ("approval", "approval answered"),
        ("tool", "bigquery/run_query"),
        ("model", "test-model"),
    ]
    assert steps[2].input["queries"][0]["sql"] == DAILY_POSTS_SQL
    assert steps[3].output == "approved by ana"


async def test_a_declined_query_never_runs_and_the_run_ends_saying_so(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup
) -> None:
    recorder = Recorder()

    asked, answered = await _ask_daily_posts(
        hub, upstream, analyst, recorder, approval=ALWAYS_ASK, approve=False
    )

    assert asked.status == "waiting"
    assert answered.status == "declined"
    assert answered.text.startswith("I did not run the query: you declined it")
    assert "Nothing was run or billed" in answered.text
    assert [e.tool for e in recorder.of(ToolCallFinished)] == ["dry_run_query"]
    # The model was called once only: the decline ended the run.
    assert len(upstream.requests) == 1
    run, steps = _trace(hub, answered.trace_id)
    assert run.status == "declined"
    assert [s.name for s in steps][-2:] == ["approval asked", "approval answered"]
    assert steps[-1].output == "declined by ana"
    assert not any(s.name == "bigquery/run_query" for s in steps)


async def test_a_query_under_the_threshold_runs_without_asking(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup
) -> None:
    recorder = Recorder()

    [result] = await _ask_daily_posts(hub, upstream, analyst, recorder, approval=NEVER_ASK)

    assert result.status == "ok" and result.approval is None
    # Priced first, then run: no question in between.
    assert [e.tool for e in recorder.of(ToolCallFinished)] == ["dry_run_query", "run_query"]


async def test_a_new_message_instead_of_an_answer_declines_the_waiting_query(
    hub: RunningHub, upstream: ScriptedUpstream, analyst: AnalystSetup
) -> None:
    upstream.enqueue(
        tool_calls=[{"name": "bigquery__run_query", "arguments": {"sql": DAILY_POSTS_SQL}}]
    )
    upstream.script(reply="Sure, something else.")
    spec = AgentSpec.model_validate(analyst.run_spec("ana"))
    recorder = Recorder()
    async with analyst_runner(hub) as runner:
        [asked] = await ask_analyst(
            runner, spec, "Daily posts", approval=ALWAYS_ASK, on_event=recorder
        )
        assert asked.status == "waiting" and await runner.waiting("conv-analyst")
        [next_turn] = await ask_analyst(
            runner, spec, "Never mind. What tables are there?", approval=ALWAYS_ASK
        )
        assert not await runner.waiting("conv-analyst")

    assert next_turn.status == "ok" and next_turn.text == "Sure, something else."
    # The model saw the waiting query answered "not run", never its rows.
    messages = upstream.requests[-1]["messages"]
    tool_answers = [m for m in messages if m["role"] == "tool"]
    assert len(tool_answers) == 1 and tool_answers[0]["content"].startswith("Not run")
    assert [e.tool for e in recorder.of(ToolCallFinished)] == ["dry_run_query"]
    run, _ = _trace(hub, asked.trace_id)
    assert run.status == "declined"
    assert run.error == "a new message came before the answer to the approval"
