"""Judges that are prompts of the prompt library.

A judge prompt's messages use some of the variables `input` (the case's variables as JSON),
`answer` (what the target answered) and `expected` (the case's expected output, empty without
one), and it answers `{"score": 0..1, "reason": "..."}`. A run names the judge prompt in a
`judge` check; the version it uses (production when the check names none) is fixed when the run
is made, so every row of a run is judged by one version.
"""

from typing import Any

import orjson
from sqlmodel import Session

from hub.core.errors import InvalidError, NotFoundError
from hub.gateway.chat_request import ChatRequest
from hub.gateway.prompt_calls import PromptCall, render_request
from hub.models.evaluation import Check, CheckKind
from hub.models.prompt import Prompt, PromptVersion
from hub.services import prompts as prompt_store

__all__ = [
    "JUDGE_VARIABLES",
    "JudgeVersions",
    "judge_prompt_request",
    "judge_variables",
    "load_judge_version",
    "resolve_judge_checks",
]

JUDGE_VARIABLES = ("input", "answer", "expected")
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
