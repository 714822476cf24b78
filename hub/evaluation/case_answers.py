"""One case of a run answered: the prompt version rendered with the case's variables, called
through the gateway in the hub's process (as the service `evaluation`, with the run's team, so
the usage and the cost page show the calls under the prompt and its version), then checked.
"""

import time
from dataclasses import dataclass
from typing import Any

from hub.evaluation.checks import Answer, PreparedCheck, apply_checks
from hub.gateway.chat_request import ChatRequest
from hub.gateway.completion import read_completion
from hub.gateway.errors import GatewayError
from hub.gateway.prompt_calls import PromptCall, render_request, variable_values
from hub.gateway.prompt_tools import PromptTools
from hub.gateway.proxy import Gateway
from hub.models.evaluation import EvalCase, ResultStatus
from hub.models.prompt import PromptVersion
from hub.services.service_accounts import ServiceIdentity

__all__ = ["RunTarget", "answer_case", "rendered_request"]


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
class _Spent:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def rendered_request(prompt: str, version: PromptVersion, variables: dict[str, Any]) -> ChatRequest:
    """The version's request for a case; a `GatewayError` says which variables do not fit."""
    call = PromptCall(
        variables=variable_values(variables), version=None, stream=False, client_wants_usage=False
    )
    return render_request(
        version, call, name=prompt, where=f"the prompt {prompt!r} v{version.number}"
    )


async def _call(
    target: RunTarget,
    request: ChatRequest,
    spent: _Spent,
    *,
    judging: bool,
    judge: tuple[str | None, int | None] = (None, None),
) -> dict[str, Any]:
    """One completion of the target (with its tool rounds, for a version with MCP servers) or
    of a judge (the judge prompt and version it renders, if any, go on its usage record), its
    tokens and cost added to `spent` at the catalog's prices of the model that answered."""
    if judging:
        response = await target.gateway.complete(
            service=target.service, request=request, prompt=judge[0], prompt_version=judge[1]
        )
    elif target.version.mcp_servers:
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
    spent.input_tokens += completion.input_tokens
    spent.output_tokens += completion.output_tokens
    spent.cost_usd += completion.cost_usd
    return completion.body


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
    spent = _Spent()
    try:
        request = rendered_request(target.prompt, target.version, case.variables)
    except GatewayError as error:
        return {"status": ResultStatus.error.value, "error": error.message[:2000]}
    started = time.perf_counter()
    try:
        completion = await _call(target, request, spent, judging=False)
    except GatewayError as error:
        return {"status": ResultStatus.error.value, "error": error.message[:2000]}
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    answer = _answer_of(completion)

    async def judge(
        request: ChatRequest, prompt: str | None, version: int | None
    ) -> tuple[str | None, str]:
        try:
            verdict = await _call(target, request, spent, judging=True, judge=(prompt, version))
        except GatewayError as error:
            return None, error.message
        return _answer_of(verdict).text, ""

    outcomes = await apply_checks(target.checks, answer, case, judge)
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
