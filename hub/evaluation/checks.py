"""Checks of a case's answer: deterministic ones, and a judge (a catalog model with a rubric).

A run's checks are prepared once when the run is made or picked up (`prepare_checks`: regular
expressions compiled, schemas checked), so a bad one is refused before any case is sent. Each
check of each answer gives a `CheckOutcome`.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import SchemaError, ValidationError, validators

from hub.core.errors import InvalidError
from hub.evaluation.judge_prompts import JudgeVersions, judge_prompt_request, read_verdict
from hub.gateway.chat_request import ChatRequest
from hub.gateway.errors import GatewayError
from hub.gateway.model_catalog import ModelCatalog
from hub.models.evaluation import Check, CheckKind, CheckOutcome, EvalCase
from hub.models.prompt import PromptVersion

__all__ = [
    "JUDGE_MAX_TOKENS",
    "Answer",
    "JudgeCall",
    "PreparedCheck",
    "apply_checks",
    "judge_messages",
    "prepare_checks",
]

# A longer pattern is refused: patterns are written by people, and a bound keeps them readable
# and their matching cost within reason.
MAX_PATTERN_CHARS = 1_000
# What a judge may answer with; its reason is short.
JUDGE_MAX_TOKENS = 300
_JUDGE_SYSTEM = (
    "You judge an answer that a prompt gave for one test case, by the rubric you are given. "
    'Reply with one JSON object and nothing else: {"score": <a number from 0 to 1>, '
    '"reason": "<one or two sentences>"}. 1 means the answer fully meets the rubric.'
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the target gave for one case: the text, and the tools it called."""

    text: str
    tool_calls: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PreparedCheck:
    check: Check
    pattern: re.Pattern[str] | None = None
    schema_validator: Any = None
    # For a judge by prompt: the version of it that judges.
    judge_version: PromptVersion | None = None

    @property
    def name(self) -> str:
        return self.check.label


# A judge's answer to a request (with the judge prompt and version it renders, for the usage
# record): the text it gave, or None and why it could not answer.
JudgeCall = Callable[[ChatRequest, str | None, int | None], Awaitable[tuple[str | None, str]]]


def prepare_checks(
    checks: list[Check], catalog: ModelCatalog, judges: JudgeVersions
) -> list[PreparedCheck]:
    """The checks ready to apply, judge prompts' versions from `judges` (their versions
    resolved, see hub/evaluation/judge_prompts.py); an `InvalidError` (422) names the first
    bad one."""
    names = [check.label for check in checks]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise InvalidError(
            f"Two checks are named {repeated[0]!r}; give each check of a kind its own 'name'."
        )
    return [_prepare(check, catalog, judges) for check in checks]


def _prepare(check: Check, catalog: ModelCatalog, judges: JudgeVersions) -> PreparedCheck:
    where = f"The check {check.label!r}"
    if check.kind == CheckKind.judge and check.judge_prompt is not None:
        version = judges.get((check.judge_prompt, check.judge_version or 0))
        if version is None:
            raise InvalidError(
                f"{where}: the judge prompt {check.judge_prompt!r} v{check.judge_version} is gone."
            )
        return PreparedCheck(check, judge_version=version)
    if check.kind == CheckKind.regex:
        pattern = check.value or ""
        if len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidError(
                f"{where}: the pattern is {len(pattern)} characters; at most {MAX_PATTERN_CHARS}."
            )
        flags = 0 if check.case_sensitive else re.IGNORECASE
        try:
            return PreparedCheck(check, pattern=re.compile(pattern, flags))
        except re.error as exc:
            raise InvalidError(f"{where}: the pattern is not a regular expression: {exc}.") from exc
    if check.kind == CheckKind.json_schema:
        schema = check.json_schema or {}
        kind = validators.validator_for(schema)
        try:
            kind.check_schema(schema)
        except SchemaError as exc:
            raise InvalidError(f"{where}: the JSON schema is not valid: {exc.message}.") from exc
        return PreparedCheck(check, schema_validator=kind(schema))
    if check.kind == CheckKind.judge and catalog.get(check.model or "") is None:
        known = ", ".join(entry.name for entry in catalog.models)
        raise InvalidError(f"{where}: no model {check.model!r} in the catalog; models: {known}.")
    return PreparedCheck(check)


def _fold(text: str, check: Check) -> str:
    return text if check.case_sensitive else text.casefold()


def _parsed(text: str) -> tuple[bool, Any, str]:
    try:
        return True, orjson.loads(text), ""
    except orjson.JSONDecodeError as exc:
        return False, None, f"The answer is not JSON: {exc}."


def _deterministic(prepared: PreparedCheck, answer: Answer, case: EvalCase) -> CheckOutcome:
    check, name = prepared.check, prepared.name
    text = answer.text
    kind = check.kind
    if kind in (CheckKind.valid_json, CheckKind.json_schema, CheckKind.required_fields):
        ok, value, why = _parsed(text)
        if not ok:
            return CheckOutcome(name=name, passed=False, detail=why)
        if kind == CheckKind.json_schema:
            error = next(iter(prepared.schema_validator.iter_errors(value)), None)
            if isinstance(error, ValidationError):
                where = "/".join(str(p) for p in error.absolute_path) or "the answer"
                return CheckOutcome(name=name, passed=False, detail=f"{where}: {error.message}")
        if kind == CheckKind.required_fields:
            if not isinstance(value, dict):
                return CheckOutcome(name=name, passed=False, detail="The answer is not an object.")
            missing = [f for f in check.fields or [] if f not in value]
            if missing:
                return CheckOutcome(
                    name=name, passed=False, detail=f"Missing field(s): {', '.join(missing)}."
                )
        return CheckOutcome(name=name, passed=True)
    if kind == CheckKind.tool_call:
        wanted = check.tool or ""
        called = wanted in answer.tool_calls or any(
            call.rpartition(".")[2] == wanted for call in answer.tool_calls
        )
        detail = "" if called else f"Called: {', '.join(answer.tool_calls) or 'no tool'}."
        return CheckOutcome(name=name, passed=called, detail=detail)
    if kind == CheckKind.regex:
        assert prepared.pattern is not None
        found = prepared.pattern.search(text) is not None
        return CheckOutcome(name=name, passed=found, detail="" if found else "No match.")
    # exact and contains: the check's value, or the case's expected output.
    expected = check.value if check.value is not None else case.expected
    if expected is None:
        return CheckOutcome(
            name=name, passed=False, detail="No value to compare: the case has no expected output."
        )
    if kind == CheckKind.exact:
        same = _fold(text.strip(), check) == _fold(expected.strip(), check)
        return CheckOutcome(name=name, passed=same, detail="" if same else "Not equal.")
    inside = _fold(expected, check) in _fold(text, check)
    return CheckOutcome(name=name, passed=inside, detail="" if inside else f"No {expected!r}.")


def judge_messages(check: Check, case: EvalCase, answer_text: str) -> list[dict[str, Any]]:
    variables = orjson.dumps(case.variables, option=orjson.OPT_INDENT_2).decode()
    expected = case.expected if case.expected is not None else "(none given)"
    user = (
        f"Rubric:\n{check.rubric}\n\nThe case's variables:\n{variables}\n\n"
        f"Expected output:\n{expected}\n\nThe answer to judge:\n{answer_text}"
    )
    return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": user}]


def _judge_request(check: Check, case: EvalCase, answer: Answer) -> ChatRequest:
    model = check.model or ""
    body = {
        "model": model,
        "messages": judge_messages(check, case, answer.text),
        "temperature": 0,
        "max_tokens": JUDGE_MAX_TOKENS,
        "stream": False,
    }
    return ChatRequest(model=model, body=body, stream=False, client_wants_usage=False)


def _verdict(check: Check, text: str) -> CheckOutcome:
    """The judge's JSON read into an outcome; an answer that is not one fails the check."""
    score, reason = read_verdict(text)
    return CheckOutcome(
        name=check.label,
        passed=score is not None and score >= check.pass_score,
        detail=reason,
        score=score,
        judge=check.judge_prompt,
        judge_version=check.judge_version,
    )


async def apply_checks(
    checks: list[PreparedCheck], answer: Answer, case: EvalCase, judge: JudgeCall
) -> list[CheckOutcome]:
    outcomes = []
    for prepared in checks:
        if prepared.check.kind != CheckKind.judge:
            outcomes.append(_deterministic(prepared, answer, case))
            continue
        check = prepared.check
        try:
            request = (
                judge_prompt_request(
                    check.judge_prompt or "",
                    prepared.judge_version,
                    case.variables,
                    case.expected,
                    answer.text,
                )
                if prepared.judge_version is not None
                else _judge_request(check, case, answer)
            )
        except GatewayError as error:
            text, why = None, error.message
        else:
            text, why = await judge(request, check.judge_prompt, check.judge_version)
        if text is None:
            outcomes.append(
                CheckOutcome(
                    name=prepared.name,
                    passed=False,
                    detail=f"The judge could not answer: {why}",
                    judge=check.judge_prompt,
                    judge_version=check.judge_version,
                )
            )
        else:
            outcomes.append(_verdict(prepared.check, text))
    return outcomes
