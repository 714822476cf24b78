"""Judges that are prompts of the prompt library.

A judge prompt's messages use some of the variables `input` (the case's variables as JSON),
`answer` (what the target answered) and `expected` (the case's expected output, empty without
one), and it answers `{"score": 0..1, "reason": "..."}`. A run names the judge prompt in a
`judge` check; the version it uses (production when the check names none) is fixed when the run
is made, so every row of a run is judged by one version.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import Session

from hub.core.errors import InvalidError, NotFoundError
from hub.gateway.chat_request import ChatRequest
from hub.gateway.completion import read_completion
from hub.gateway.errors import GatewayError
from hub.gateway.prompt_calls import PromptCall, render_request
from hub.gateway.proxy import Gateway
from hub.models.evaluation import Check, CheckKind
from hub.models.prompt import Prompt, PromptVersion
from hub.services import prompts as prompt_store
from hub.services.service_accounts import ServiceIdentity

__all__ = [
    "JUDGE_VARIABLES",
    "JudgeVerdict",
    "JudgeVersions",
    "judge_answer",
    "judge_prompt_request",
    "judge_variables",
    "load_judge_version",
    "read_verdict",
    "resolve_judge_checks",
]

JUDGE_VARIABLES = ("input", "answer", "expected")
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
# The judge prompts' versions a run's checks use, by (name, version).
JudgeVersions = dict[tuple[str, int], PromptVersion]


def judge_variables(variables: dict[str, Any], expected: str | None, answer: str) -> dict[str, str]:
    return {
        "input": orjson.dumps(variables, option=orjson.OPT_INDENT_2).decode(),
        "answer": answer,
        "expected": expected or "",
    }


def judge_prompt_request(
    name: str, version: PromptVersion, variables: dict[str, Any], expected: str | None, answer: str
) -> ChatRequest:
    """The judge version's request for one row: only the variables its messages use."""
    values = judge_variables(variables, expected, answer)
    used = prompt_store.variables_of(version)
    call = PromptCall(
        variables={key: values[key] for key in used if key in values},
        version=None,
        stream=False,
        client_wants_usage=False,
    )
    return render_request(version, call, name=name, where=f"the judge {name!r} v{version.number}")


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    passed: bool
    score: float | None
    reason: str
    cost_usd: float


def read_verdict(text: str) -> tuple[float | None, str]:
    """A judge's score (0 to 1) and reason; no score, and why, for an answer not of that
    shape."""
    found = _OBJECT.search(text)
    try:
        verdict = orjson.loads(found.group(0)) if found else None
    except orjson.JSONDecodeError:
        verdict = None
    score = verdict.get("score") if isinstance(verdict, dict) else None
    if (
        not isinstance(verdict, dict)
        or not isinstance(score, int | float)
        or isinstance(score, bool)
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        return None, f'The judge did not answer {{"score": 0..1, "reason": ...}}: {text[:300]!r}'
    return float(score), str(verdict.get("reason", ""))[:2000]


async def judge_answer(
    gateway: Gateway,
    service: ServiceIdentity,
    name: str,
    version: PromptVersion,
    variables: dict[str, Any],
    expected: str | None,
    answer: str,
    pass_score: float,
) -> JudgeVerdict:
    """The judge version's verdict on one answer, asked through the gateway as `service` and
    counted under the judge prompt; an answer that is not a verdict counts as a fail, as in a
    run's judge check."""
    try:
        request = judge_prompt_request(name, version, variables, expected, answer)
        response = await gateway.complete(
            service=service, request=request, prompt=name, prompt_version=version.number
        )
    except GatewayError as error:
        return JudgeVerdict(False, None, f"The judge could not answer: {error.message}", 0.0)
    try:
        completion = read_completion(response, gateway.catalog, request.model)
    except GatewayError:
        return JudgeVerdict(False, None, "The judge's answer was not JSON.", 0.0)
    score, reason = read_verdict(completion.text)
    passed = score is not None and score >= pass_score
    return JudgeVerdict(passed, score, reason, completion.cost_usd)


def load_judge_version(
    session: Session, name: str, number: int | None
) -> tuple[Prompt, PromptVersion]:
    """The judge prompt and its version `number` (production when None); a 404 names what is
    missing, a 422 a version whose variables are not the judge's."""
    prompt = prompt_store.get_prompt(session=session, name=name)
    if prompt is None:
        raise NotFoundError(f"No judge prompt {name!r} exists.")
    wanted = number or prompt.production_version
    version = (
        prompt_store.get_version(session=session, prompt=prompt, number=wanted) if wanted else None
    )
    if version is None:
        raise NotFoundError(f"The judge prompt {name!r} has no version {wanted}.")
    others = [v for v in prompt_store.variables_of(version) if v not in JUDGE_VARIABLES]
    if others:
        raise InvalidError(
            f"The judge prompt {name!r} v{version.number} uses {', '.join(others)}; a judge's "
            f"messages may only use {', '.join(JUDGE_VARIABLES)}."
        )
    return prompt, version


def resolve_judge_checks(
    session: Session, checks: list[Check]
) -> tuple[list[Check], JudgeVersions]:
    """The checks with each judge prompt's version filled in, and those versions."""
    resolved: list[Check] = []
    judges: JudgeVersions = {}
    for check in checks:
        if check.kind == CheckKind.judge and check.judge_prompt is not None:
            _, version = load_judge_version(session, check.judge_prompt, check.judge_version)
            judges[(check.judge_prompt, version.number)] = version
            check = check.model_copy(update={"judge_version": version.number})
        resolved.append(check)
    return resolved, judges
