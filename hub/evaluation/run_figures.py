"""A run's figures from its results: pass rates overall, per check and per tag, tokens, cost,
latency percentiles; and two runs compared case by case."""

import math

from hub.models.evaluation import (
    CheckOutcome,
    CheckSummary,
    ComparedRow,
    EvalCase,
    EvalResult,
    ResultPublic,
    ResultStatus,
    RunAggregates,
    RunComparison,
    TagSummary,
)

__all__ = ["aggregates", "compare", "percentile", "result_public"]

ResultRows = list[tuple[EvalResult, EvalCase]]


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or
    below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _rate(passed: int, total: int) -> float | None:
    return passed / total if total else None


def _passed(result: EvalResult) -> bool:
    return result.status == ResultStatus.done.value and bool(result.passed)


def aggregates(rows: ResultRows) -> RunAggregates:
    finished = [(r, c) for r, c in rows if r.status != ResultStatus.started.value]
    done = [r for r, _ in finished if r.status == ResultStatus.done.value]
    passed = sum(1 for r in done if r.passed)
    per_check: dict[str, list[int]] = {}
    for result in done:
        for outcome in result.outcomes:
            counts = per_check.setdefault(str(outcome["name"]), [0, 0])
            counts[0 if outcome["passed"] else 1] += 1
    per_tag: dict[str, list[int]] = {}
    for result, case in finished:
        for tag in case.tags:
            counts = per_tag.setdefault(tag, [0, 0])
            counts[0] += 1
            counts[1] += _passed(result)
    latencies = [r.latency_ms for r in done if r.latency_ms is not None]
    return RunAggregates(
        passed=passed,
        failed=len(done) - passed,
        errors=len(finished) - len(done),
        pass_rate=_rate(passed, len(finished)),
        checks=[
            CheckSummary(name=name, passed=p, failed=f, pass_rate=_rate(p, p + f))
            for name, (p, f) in per_check.items()
        ],
        tags=[
            TagSummary(tag=tag, cases=n, passed=p, pass_rate=_rate(p, n))
            for tag, (n, p) in sorted(per_tag.items())
        ],
        input_tokens=sum(r.input_tokens for r, _ in finished),
        output_tokens=sum(r.output_tokens for r, _ in finished),
        cost_usd=round(sum(r.cost_usd for r, _ in finished), 8),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
    )


def result_public(result: EvalResult, case: EvalCase) -> ResultPublic:
    assert case.id is not None
    return ResultPublic(
        case_id=case.id,
        position=result.position,
        variables=case.variables,
        expected=case.expected,
        tags=case.tags,
        status=ResultStatus(result.status),
        output=result.output,
        outcomes=[CheckOutcome.model_validate(outcome) for outcome in result.outcomes],
        passed=result.passed,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
        latency_ms=result.latency_ms,
        error=result.error,
    )


def compare(
    before_id: int, after_id: int, before: ResultRows, after: ResultRows, cases: int
) -> RunComparison:
    """`after` against `before`, case by case (both runs of one test-set version of `cases`
    cases)."""
    earlier = {case.id: (r, case) for r, case in before if r.status != ResultStatus.started.value}
    comparison = RunComparison(
        before=before_id,
        after=after_id,
        better=[],
        worse=[],
        unchanged_passed=0,
        unchanged_failed=0,
        missing=0,
    )
    matched = 0
    for result, case in after:
        old = earlier.get(case.id)
        if old is None or result.status == ResultStatus.started.value:
            continue
        matched += 1
        was, now = _passed(old[0]), _passed(result)
        if was == now:
            if now:
                comparison.unchanged_passed += 1
            else:
                comparison.unchanged_failed += 1
            continue
        assert case.id is not None
        row = ComparedRow(
            case_id=case.id,
            position=case.position,
            variables=case.variables,
            before=result_public(*old),
            after=result_public(result, case),
        )
        (comparison.better if now else comparison.worse).append(row)
    comparison.missing = cases - matched
    return comparison
