"""One case of a run answered: the prompt version rendered with the case's variables, called
through the gateway in the hub's process (as the service `evaluation`, with the run's team, so
the usage and the cost page show the calls under the prompt and its version), then checked.
"""

import time
from dataclasses import dataclass
from typing import Any

from hub.evaluation.checks import Answer, JudgeCall, PreparedCheck, apply_checks
from hub.gateway.chat_request import ChatRequest
from hub.gateway.completion import Completion, read_completion
from hub.gateway.errors import GatewayError
from hub.gateway.prompt_calls import PromptCall, render_request, variable_values
from hub.gateway.prompt_tools import PromptTools
from hub.gateway.proxy import Gateway
from hub.models.evaluation import CheckOutcome, EvalCase, ResultStatus
from hub.models.prompt import PromptVersion
from hub.services.service_accounts import ServiceIdentity

__all__ = [
    "RunTarget",
    "Spent",
    "answer_case",
    "answered",
    "judge_call",
    "rendered_request",
]


@dataclass(frozen=True, slots=True)
class RunTarget:
    """What answering a run's cases needs, loaded once per run."""

    prompt: str
    version: PromptVersion
    checks: list[PreparedCheck]
    service: ServiceIdentity
    gateway: Gateway
    tools: PromptTools


@dataclass(slots=True)
class Spent:
    """What a case's calls (the target's and the judges') spent, at the catalog's prices of
    the models that answered."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, completion: Completion) -> None:
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cost_usd += completion.cost_usd


def rendered_request(prompt: str, version: PromptVersion, variables: dict[str, Any]) -> ChatRequest:
    """The version's request for a case; a `GatewayError` says which variables do not fit."""
    call = PromptCall(
        variables=variable_values(variables), version=None, stream=False, client_wants_usage=False
    )
    return render_request(
        version, call, name=prompt, where=f"the prompt {prompt!r} v{version.number}"
    )


async def _call(target: RunTarget, request: ChatRequest, spent: Spent) -> dict[str, Any]:
    """One completion of the target (with its tool rounds, for a version with MCP servers),
    its tokens and cost added to `spent`."""
    if target.version.mcp_servers:
        response = await target.tools.complete(
            service=target.service,
            request=request,
            definition=target.version,
            caller=target.service.name,
            prompt=target.prompt,
            prompt_version=target.version.number,
        )
    else:
        response = await target.gateway.complete(
            service=target.service,
            request=request,
            prompt=target.prompt,
            prompt_version=target.version.number,
        )
    completion = read_completion(response, target.gateway.catalog, request.model)
    spent.add(completion)
    return completion.body


def judge_call(gateway: Gateway, service: ServiceIdentity, spent: Spent) -> JudgeCall:
    """The checks' judge: one completion through the gateway as `service` (the judge prompt
    and version it renders, if any, go on its usage record), its tokens and cost added to
    `spent`; its text, or None and why not."""

    async def judge(
        request: ChatRequest, prompt: str | None, version: int | None
    ) -> tuple[str | None, str]:
        try:
            response = await gateway.complete(
                service=service, request=request, prompt=prompt, prompt_version=version
            )
            completion = read_completion(response, gateway.catalog, request.model)
        except GatewayError as error:
            return None, error.message
        spent.add(completion)
        return _answer_of(completion.body).text, ""

    return judge


def _answer_of(completion: dict[str, Any]) -> Answer:
    message = (completion.get("choices") or [{}])[0].get("message") or {}
    called = [
        f"{call.get('server')}.{call.get('tool')}" if call.get("server") else str(call.get("tool"))
        for call in completion.get("switchboard_tool_calls") or []
    ]
    # A version without servers: the tools the model asked for in its answer.
    called += [
        str((call.get("function") or {}).get("name", ""))
        for call in message.get("tool_calls") or []
    ]
    return Answer(text=str(message.get("content") or ""), tool_calls=called)


async def answer_case(target: RunTarget, case: EvalCase) -> dict[str, Any]:
    """The result's values for `case`: its answer, outcomes, tokens, cost and latency, or
    the error that kept it from being answered."""
    spent = Spent()
    try:
        request = rendered_request(target.prompt, target.version, case.variables)
    except GatewayError as error:
        return {"status": ResultStatus.error.value, "error": error.message[:2000]}
    started = time.perf_counter()
    try:
        completion = await _call(target, request, spent)
    except GatewayError as error:
        return {"status": ResultStatus.error.value, "error": error.message[:2000]}
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    answer = _answer_of(completion)
    judge = judge_call(target.gateway, target.service, spent)
    outcomes = await apply_checks(target.checks, answer, case, judge)
    return answered(answer, outcomes, spent, latency_ms)


def answered(
    answer: Answer, outcomes: list[CheckOutcome], spent: Spent, latency_ms: float
) -> dict[str, Any]:
    """The result's values for an answered case."""
    return {
        "status": ResultStatus.done.value,
        "output": answer.text,
        "outcomes": [outcome.model_dump() for outcome in outcomes],
        "passed": all(outcome.passed for outcome in outcomes),
        "input_tokens": spent.input_tokens,
        "output_tokens": spent.output_tokens,
        "cost_usd": spent.cost_usd,
        "latency_ms": latency_ms,
        "error": None,
    }
