"""The tracer on SQLite and PostgreSQL: runs and steps reach the hub's tables in batches, and
nothing queued is lost when a run is left open or a write fails."""

import logging
from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from sqlmodel import Session, col, select

from agents.spec import AgentSpec
from agents.tracing import Tracer
from hub.core.db import get_engine, migrate
from hub.models.trace import TraceRun, TraceStep

pytestmark = pytest.mark.anyio

SPEC = AgentSpec(
    slug="helper",
    version=None,
    owner="bo",
    name="Helper",
    instructions="Help.",
    model="test-model",
    tools=(),
    input_usd_per_million=1.0,
    output_usd_per_million=4.0,
)


@pytest.fixture
def traced_url(database_url: str) -> Iterator[str]:
    migrate(database_url)
    yield database_url


def _read(url: str, run_id: str) -> tuple[TraceRun | None, list[TraceStep]]:
    with Session(get_engine(url)) as session:
        run = session.get(TraceRun, run_id)
        query = select(TraceStep).where(TraceStep.run_id == run_id).order_by(col(TraceStep.seq))
        return run, list(session.exec(query).all())


def _answer(text: str, input_tokens: int, output_tokens: int) -> AIMessage:
    usage: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    return AIMessage(text, usage_metadata=usage)


async def test_a_run_is_written_when_it_starts_and_again_with_its_totals_when_it_ends(
    traced_url: str,
) -> None:
    tracer = Tracer(traced_url, flush_interval_s=60)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id="c-7")
    await tracer.flush()
    run, steps = _read(traced_url, trace.id)
    assert run is not None and (run.status, run.ended_at, steps) == ("running", None, [])

    step = trace.begin_step("model", "test-model")
    request = [HumanMessage("hi")]
    trace.end_model_step(step, request=request, response=_answer("hello", 100, 20))
    tool = trace.begin_step("tool", "weather/get_weather", parent_id=step.id)
    trace.end_tool_step(tool, arguments={"city": "Oslo"}, result=None, error="down")
    await tracer.flush()
    assert [s.kind for s in _read(traced_url, trace.id)[1]] == ["model", "tool"]

    trace.finish("ok")
    await tracer.close()
    run, steps = _read(traced_url, trace.id)
    assert run is not None
    assert (run.status, run.steps, run.input_tokens, run.output_tokens) == ("ok", 2, 100, 20)
    assert run.cost_usd == pytest.approx((100 * 1.0 + 20 * 4.0) / 1_000_000)
    assert run.ended_at is not None and run.conversation_id == "c-7"
    model, failed = steps
    assert model.input == [{"role": "user", "content": "hi"}]
    assert model.output == {"content": "hello", "tool_calls": []}
    assert (failed.parent_id, failed.error, failed.output) == (model.id, "down", None)


async def test_a_run_still_open_when_the_tracer_closes_is_kept_as_stopped(
    traced_url: str,
) -> None:
    async with Tracer(traced_url) as tracer:
        trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
        step = trace.begin_step("tool", "handbook/search")
        trace.end_tool_step(step, arguments={"q": "travel"}, result="found")

    run, steps = _read(traced_url, trace.id)
    assert run is not None and run.status == "error"
    assert run.error == "the process stopped before the run ended"
    assert [(s.name, s.output) for s in steps] == [("handbook/search", "found")]


async def test_a_run_that_starts_and_ends_within_one_flush_is_written_once_with_its_end(
    traced_url: str,
) -> None:
    async with Tracer(traced_url, flush_interval_s=60) as tracer:
        trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
        trace.finish("limit", "stopped at 8 steps")
        trace.finish("ok")  # only the first end counts

    run, _ = _read(traced_url, trace.id)
    assert run is not None and (run.status, run.error) == ("limit", "stopped at 8 steps")


async def test_a_write_that_fails_is_retried_and_loses_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hub.core.batch_writer")
    tracer = Tracer(database_url, flush_interval_s=60)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
    step = trace.begin_step("model", "test-model")
    trace.end_model_step(step, request=[HumanMessage("hi")], response=None, error="boom")
    trace.finish("error", "boom")

    await tracer.flush()  # no tables yet: the write fails and the batch is kept
    assert "could not write 3 trace rows" in caplog.text

    migrate(database_url)
    await tracer.close()
    run, steps = _read(database_url, trace.id)
    assert run is not None and (run.status, run.error, run.steps) == ("error", "boom", 1)
    assert [(s.kind, s.error) for s in steps] == [("model", "boom")]
