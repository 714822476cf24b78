"""The gate form on a prompt's page: the test set, the margin, one judge (a model and rubric,
or a judge prompt), and any other checks as JSON; read into the API's body, and filled from a
gate that is bound."""

from typing import Any

import orjson
from starlette.datastructures import FormData

from hub.core.errors import InvalidError
from hub.models.eval_gate import GatePublic, GateSet
from hub.models.evaluation import CheckKind

__all__ = ["FIELDS", "gate_body", "gate_form", "posted_gate_form"]

FIELDS = (
    "set",
    "margin",
    "judge_model",
    "rubric",
    "judge_prompt",
    "judge_version",
    "pass_score",
    "other_checks",
)


def gate_form(gate: GatePublic | None) -> dict[str, str]:
    """The form's fields: the bound gate's, or empty ones with the usual defaults."""
    form = dict.fromkeys(FIELDS, "") | {"margin": "0", "pass_score": "0.5"}
    if gate is None:
        return form
    first = next((i for i, c in enumerate(gate.checks) if c.kind == CheckKind.judge), None)
    others = [c for i, c in enumerate(gate.checks) if i != first]
    form |= {"set": gate.set, "margin": f"{gate.margin:g}"}
    if first is not None:
        judge = gate.checks[first]
        form |= {
            "judge_model": judge.model or "",
            "rubric": judge.rubric or "",
            "judge_prompt": judge.judge_prompt or "",
            "judge_version": str(judge.judge_version or ""),
            "pass_score": f"{judge.pass_score:g}",
        }
    if others:
        dumped = [c.model_dump(mode="json", exclude_defaults=True) for c in others]
        form["other_checks"] = orjson.dumps(dumped, option=orjson.OPT_INDENT_2).decode()
    return form


def posted_gate_form(posted: FormData) -> dict[str, str]:
    return {key: str(posted.get(key, "")).strip() for key in FIELDS}


def gate_body(form: dict[str, str]) -> GateSet:
    """The form's fields as the API's body (a `ValidationError` or `InvalidError` says what
    to fix)."""
    checks: list[Any] = []
    if form["other_checks"]:
        try:
            checks = orjson.loads(form["other_checks"])
        except orjson.JSONDecodeError as exc:
            raise InvalidError(f"The other checks are not valid JSON: {exc}.") from exc
        if not isinstance(checks, list):
            raise InvalidError('The other checks must be a JSON list, [{"kind": ...}, ...].')
    judge: dict[str, Any] = {}
    if form["judge_model"] or form["rubric"]:
        judge |= {"model": form["judge_model"] or None, "rubric": form["rubric"] or None}
    if form["judge_prompt"]:
        judge |= {
            "judge_prompt": form["judge_prompt"],
            "judge_version": form["judge_version"] or None,
        }
    if judge:
        checks = [{"kind": "judge", **judge, "pass_score": form["pass_score"] or 0.5}, *checks]
    return GateSet.model_validate(
        {"set": form["set"], "checks": checks, "margin": form["margin"] or 0}
    )
