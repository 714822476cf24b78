"""The tracer against a real hub over HTTP, on SQLite and PostgreSQL: runs and steps reach the
hub's tables in batches, and nothing queued is lost when a run is left open or the hub is out
of reach for a while."""

import logging

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from sqlmodel import Session, col, select

from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from hub.core.config import Settings
from hub.core.db import get_engine
from hub.main import create_app
from hub.models.trace import TraceRun, TraceStep
from tests.conftest import RunningHub
from tests.support.servers import ThreadedServer

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
TRACER_LOG = "agents.tracing.sender"


@pytest.fixture
def hub_database_url(database_url: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database_url


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
    hub: RunningHub,
) -> None:
    url = hub.settings.sqlalchemy_url
    tracer = Tracer(hub.url, hub.app_token, flush_interval_s=60)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id="c-7")
    await tracer.flush()
    run, steps = _read(url, trace.id)
    assert run is not None and (run.status, run.ended_at, steps) == ("running", None, [])

    step = trace.begin_step("model", "test-model")
    request = [HumanMessage("hi")]
    trace.end_model_step(step, request=request, response=_answer("hello", 100, 20))
    tool = trace.begin_step("tool", "weather/get_weather", parent_id=step.id)
    trace.end_tool_step(tool, arguments={"city": "Oslo"}, result=None, error="down")
    await tracer.flush()
    assert [s.kind for s in _read(url, trace.id)[1]] == ["model", "tool"]

    trace.finish("ok")
    await tracer.close()
    run, steps = _read(url, trace.id)
    assert run is not None
    assert (run.status, run.steps, run.input_tokens, run.output_tokens) == ("ok", 2, 100, 20)
    assert run.cost_usd == pytest.approx((100 * 1.0 + 20 * 4.0) / 1_000_000)
    assert run.ended_at is not None and run.conversation_id == "c-7"
    model, failed = steps
    assert model.input == [{"role": "user", "content": "hi"}]
    assert model.output == {"content": "hello", "tool_calls": []}
    assert (failed.parent_id, failed.error, failed.output) == (model.id, "down", None)


async def test_a_run_still_open_when_the_tracer_closes_is_kept_as_stopped(
    hub: RunningHub,
) -> None:
    async with Tracer(hub.url, hub.app_token) as tracer:
        trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
        step = trace.begin_step("tool", "handbook/search")
        trace.end_tool_step(step, arguments={"q": "travel"}, result="found")

    run, steps = _read(hub.settings.sqlalchemy_url, trace.id)
    assert run is not None and run.status == "error"
    assert run.error == "the process stopped before the run ended"
    assert [(s.name, s.output) for s in steps] == [("handbook/search", "found")]


async def test_a_run_that_starts_and_ends_within_one_flush_is_written_once_with_its_end(
    hub: RunningHub,
) -> None:
    async with Tracer(hub.url, hub.app_token, flush_interval_s=60) as tracer:
        trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
        trace.finish("limit", "stopped at 8 steps")
        trace.finish("ok")  # only the first end counts

    run, _ = _read(hub.settings.sqlalchemy_url, trace.id)
    assert run is not None and (run.status, run.error) == ("limit", "stopped at 8 steps")


async def test_a_run_traced_while_the_hub_was_down_arrives_once_it_is_up(
    hub_settings: Settings, hub_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRACER_LOG)
    # Nothing listens on the hub's port yet.
    tracer = Tracer(f"http://127.0.0.1:{hub_port}", hub_settings.app_service_token)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
    step = trace.begin_step("model", "test-model")
    trace.end_model_step(step, request=[HumanMessage("hi")], response=None, error="boom")
    trace.finish("error", "boom")

    await tracer.flush()  # refused connection: the batch is kept
    # The run's start and end are one record by then (its latest), with its one step.
    assert "could not send 2 trace records to the hub" in caplog.text

    with ThreadedServer(create_app(hub_settings), port=hub_port):
        await tracer.close()
        run, steps = _read(hub_settings.sqlalchemy_url, trace.id)
    assert run is not None and (run.status, run.error, run.steps) == ("error", "boom", 1)
    assert [(s.kind, s.error) for s in steps] == [("model", "boom")]


async def test_past_its_bound_the_tracer_drops_the_oldest_steps_and_says_so(
    hub_settings: Settings, hub_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRACER_LOG)
    tracer = Tracer(f"http://127.0.0.1:{hub_port}", hub_settings.app_service_token, max_pending=4)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
    for query in ("a", "b", "c", "d", "e"):
        step = trace.begin_step("tool", "handbook/search")
        trace.end_tool_step(step, arguments={"q": query}, result="found")
    await tracer.flush()
    assert "dropped the 2 oldest trace records: more than 4 were waiting" in caplog.text

    with ThreadedServer(create_app(hub_settings), port=hub_port):
        trace.finish("ok")
        await tracer.close()
        run, steps = _read(hub_settings.sqlalchemy_url, trace.id)
    # The run's own record carries its totals; the two oldest steps are gone.
    assert run is not None and (run.status, run.steps) == ("ok", 5)
    assert [(s.seq, s.input) for s in steps] == [(3, {"q": "c"}), (4, {"q": "d"}), (5, {"q": "e"})]


async def test_a_batch_the_hub_refuses_is_dropped_not_sent_again(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TRACER_LOG)
    tracer = Tracer(hub.url, hub.new_service("intruder"), flush_interval_s=60)
    trace = tracer.start_run(spec=SPEC, user="bo", conversation_id=None)
    await tracer.flush()
    await tracer.flush()  # nothing left to send

    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "the hub refused 1 trace records (403" in refusals[0]
    assert "Only the chat app's service may call POST /api/traces/batch" in refusals[0]
    trace.finish("ok")
    await tracer.close()
    assert _read(hub.settings.sqlalchemy_url, trace.id) == (None, [])
