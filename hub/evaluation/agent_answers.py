"""One case of a run answered by an agent version: the case's input is the user's message of a
fresh conversation with the version (nothing is shared between cases), whose loop runs on the
agent runtime in the hub's process (hub/evaluation/agent_calls.py: model calls through the
gateway as the service `evaluation` with the run's team, counted under the agent; the
version's MCP tools through the registry; the trace kept as a chat turn's is). The checks read
the agent's final answer and the tools it called (`server.tool`).

A step that waits for a person's approval (a query over the approval threshold) cannot be
approved in a batch: the case ends there as an error, and nothing past it runs.
"""

import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from langgraph.checkpoint.memory import InMemorySaver

from agents.hub_client import HubClient
from agents.runtime import AgentRunner
from agents.runtime.approval import QueryApproval
from agents.spec import AgentSpec
from agents.tracing.tracer import Tracer
from hub.evaluation.agent_calls import GatewayTransport, RegistryTools
from hub.evaluation.case_answers import Spent, answered, judge_call
from hub.evaluation.checks import Answer, PreparedCheck, apply_checks
from hub.gateway.proxy import Gateway
from hub.mcp.registry import McpRegistry
from hub.models.evaluation import EvalCase, ResultStatus
from hub.services.service_accounts import ServiceIdentity

__all__ = [
    "INPUT_VARIABLES",
    "AgentTarget",
    "answer_agent_case",
    "case_conversation",
    "case_message",
    "no_input",
]

# The variables a case's input (the user's message) is read from, in this order; a case with
# exactly one variable gives that one.
INPUT_VARIABLES = ("message", "input")


def case_message(variables: dict[str, Any]) -> str | None:
    """The user's message of a case, or None when it gives none (or an empty one)."""
    names = [name for name in INPUT_VARIABLES if name in variables]
    if not names and len(variables) == 1:
        names = list(variables)
    if not names:
        return None
    value = variables[names[0]]
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if text.strip() and value is not None else None


def no_input(variables: dict[str, Any]) -> str:
    """Why a case gives an agent no message."""
    given = ", ".join(repr(name) for name in variables) or "none"
    return (
        "The case gives the agent no message: name a variable 'message' or 'input' (not "
        f"empty), or give exactly one variable. Its variables: {given}."
    )


def case_conversation(run_id: int, case_id: int) -> str:
    """The conversation a case of a run is answered in (its trace's conversation). Each
    answer starts it afresh: nothing of an earlier answer (before a restart) is kept."""
    return f"evaluation-run-{run_id}-case-{case_id}"


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """What answering a run's cases with an agent version needs, loaded once per run."""

    run_id: int
    spec: AgentSpec
    checks: list[PreparedCheck]
    service: ServiceIdentity
    gateway: Gateway
    registry: McpRegistry
    # Only its address and token are read: the model calls go through `GatewayTransport`.
    hub: HubClient
    tracer: Tracer | None
    approval: QueryApproval


def _error(message: str, spent: Spent, latency_ms: float | None = None) -> dict[str, Any]:
    return {
        "status": ResultStatus.error.value,
        "error": message[:2000],
        "input_tokens": spent.input_tokens,
        "output_tokens": spent.output_tokens,
        "cost_usd": spent.cost_usd,
        "latency_ms": latency_ms,
    }


async def answer_agent_case(target: AgentTarget, case: EvalCase) -> dict[str, Any]:
    """The result's values for `case`: the agent's answer, outcomes, tokens, cost and
    latency, or the error that kept it from answering."""
    message = case_message(case.variables)
    if message is None:
        return _error(no_input(case.variables), Spent())
    spec, user = target.spec, target.service.name
    model = GatewayTransport(gateway=target.gateway, service=target.service, agent=spec.slug)
    tools = RegistryTools(registry=target.registry, caller=target.service.name)
    assert case.id is not None
    conversation = case_conversation(target.run_id, case.id)
    started = time.perf_counter()
    async with httpx.AsyncClient(transport=model, trust_env=False) as http:
        runner = AgentRunner(
            hub=target.hub,
            checkpointer=InMemorySaver(),
            tracer=target.tracer,
            tool_caller=tools,
            model_http_client=http,
        )
        result = await runner.run(
            spec=spec,
            user=user,
            conversation_id=conversation,
            message=message,
            approval=target.approval,
        )
        if result.status == "waiting":
            # Declined, so the run and its trace end here with nothing more run.
            await runner.resume(spec=spec, user=user, conversation_id=conversation, approved=False)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    spent = Spent(model.input_tokens, model.output_tokens, model.cost_usd)
    if result.status == "waiting":
        return _error(
            "The agent stopped to ask a person to approve a step, which cannot be approved in "
            f"a batch run; nothing past it was run. It asked: {result.text}",
            spent,
            latency_ms,
        )
    if result.status in ("error", "timeout"):
        return _error(result.error or result.text, spent, latency_ms)
    answer = Answer(text=result.text, tool_calls=tools.called)
    judge = judge_call(target.gateway, target.service, spent)
    outcomes = await apply_checks(target.checks, answer, case, judge)
    return answered(answer, outcomes, spent, latency_ms)
