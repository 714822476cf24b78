"""What a run will cost, from the catalog's prices, before it starts.

Input tokens are estimated as the characters of the rendered messages divided by 4; output
tokens as the version's `max_tokens`, or `DEFAULT_OUTPUT_TOKENS` without one. A judge's call
reads the rubric, the case and that many output tokens of answer, and answers within
`JUDGE_MAX_TOKENS`. A version with MCP servers is counted as one round, without tool calls.
An agent version is counted as one model call per case: its instructions and the case's
message in, its `max_tokens` out; its tool calls and the model calls after them are not.
"""

import math
from collections.abc import Callable
from typing import Any

from hub.evaluation.agent_answers import case_message
from hub.evaluation.case_answers import rendered_request
from hub.evaluation.checks import JUDGE_MAX_TOKENS, judge_messages
from hub.evaluation.judge_prompts import JudgeVersions, judge_prompt_request
from hub.gateway.errors import GatewayError
from hub.gateway.model_catalog import ModelCatalog
from hub.models.agent import AgentVersion
from hub.models.evaluation import Check, CheckKind, EvalCase, RunEstimate
from hub.models.prompt import PromptVersion

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_OUTPUT_TOKENS",
    "estimate_agent_run",
    "estimate_run",
]

CHARS_PER_TOKEN = 4
DEFAULT_OUTPUT_TOKENS = 256


def _tokens(messages: list[dict[str, Any]]) -> int:
    return math.ceil(sum(len(str(m.get("content") or "")) for m in messages) / CHARS_PER_TOKEN)


def _judge_call(
    check: Check, judges: JudgeVersions, case: EvalCase
) -> tuple[list[dict[str, Any]], str]:
    """A judge's messages for the case (with an empty answer) and the model that judges."""
    if check.judge_prompt is None:
        return judge_messages(check, case, ""), check.model or ""
    version = judges[(check.judge_prompt, check.judge_version or 0)]
    try:
        request = judge_prompt_request(
            check.judge_prompt, version, case.variables, case.expected, ""
        )
    except GatewayError:
        return [], version.model
    return request.body["messages"], version.model


def _estimate(
    *,
    cases: list[EvalCase],
    messages_of: Callable[[EvalCase], list[dict[str, Any]] | None],
    model: str,
    output_tokens: int,
    checks: list[Check],
    judges: JudgeVersions,
    catalog: ModelCatalog,
    basis: str,
) -> RunEstimate:
    """One call of `model` per case whose messages `messages_of` gives (None: the case is
    unfit), answering `output_tokens`, and each judge's call."""
    judge_checks = [check for check in checks if check.kind == CheckKind.judge]
    target_entry = catalog.get(model)
    tokens_in = tokens_out = unfit = 0
    cost = 0.0
    for case in cases:
        messages = messages_of(case)
        if messages is None:
            unfit += 1
            continue
        case_in = _tokens(messages)
        tokens_in += case_in
        tokens_out += output_tokens
        if target_entry is not None:
            cost += target_entry.cost_usd(case_in, output_tokens)
        for judge in judge_checks:
            messages_in, judge_model = _judge_call(judge, judges, case)
            judge_in = _tokens(messages_in) + output_tokens
            tokens_in += judge_in
            tokens_out += JUDGE_MAX_TOKENS
            if entry := catalog.get(judge_model):
                cost += entry.cost_usd(judge_in, JUDGE_MAX_TOKENS)
    fit = len(cases) - unfit
    return RunEstimate(
        cases=len(cases),
        unfit_cases=unfit,
        target_calls=fit,
        judge_calls=fit * len(judge_checks),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        estimated_cost_usd=round(cost, 8),
        basis=basis,
    )


def estimate_run(
    *,
    prompt: str,
    version: PromptVersion,
    cases: list[EvalCase],
    checks: list[Check],
    judges: JudgeVersions,
    catalog: ModelCatalog,
) -> RunEstimate:
    output_tokens = int(version.parameters.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)

    def messages_of(case: EvalCase) -> list[dict[str, Any]] | None:
        try:
            request = rendered_request(prompt, version, case.variables)
        except GatewayError:
            return None
        messages: list[dict[str, Any]] = request.body["messages"]
        return messages

    return _estimate(
        cases=cases,
        messages_of=messages_of,
        model=version.model,
        output_tokens=output_tokens,
        checks=checks,
        judges=judges,
        catalog=catalog,
        basis=(
            f"input: the rendered messages' characters / {CHARS_PER_TOKEN}; output: "
            f"{output_tokens} tokens per answer (the version's max_tokens, or "
            f"{DEFAULT_OUTPUT_TOKENS}) and {JUDGE_MAX_TOKENS} per judge's verdict; at the "
            "catalog's prices; tool rounds not counted"
        ),
    )


def estimate_agent_run(
    *,
    version: AgentVersion,
    cases: list[EvalCase],
    checks: list[Check],
    judges: JudgeVersions,
    catalog: ModelCatalog,
) -> RunEstimate:
    def messages_of(case: EvalCase) -> list[dict[str, Any]] | None:
        message = case_message(case.variables)
        if message is None:
            return None
        return [
            {"role": "system", "content": version.instructions},
            {"role": "user", "content": message},
        ]

    return _estimate(
        cases=cases,
        messages_of=messages_of,
        model=version.model,
        output_tokens=version.max_tokens,
        checks=checks,
        judges=judges,
        catalog=catalog,
        basis=(
            "one model call per case: input, the agent's instructions and the case's message "
            f"in characters / {CHARS_PER_TOKEN}; output: {version.max_tokens} tokens per answer "
            f"(the version's max_tokens) and {JUDGE_MAX_TOKENS} per judge's verdict; at the "
            f"catalog's prices of {version.model}; tool calls and the model calls after them "
            "not counted"
        ),
    )
