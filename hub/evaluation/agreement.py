"""How far a judge agrees with people on the same rows: accuracy, Cohen's kappa and the
confusion matrix of (judge, people) pass/fail."""

from hub.models.eval_judge import ConfusionMatrix

__all__ = ["agreement"]


def agreement(pairs: list[tuple[bool, bool]]) -> tuple[ConfusionMatrix, float | None, float | None]:
    """The confusion matrix of (judge passed, people passed) pairs, the share of rows where
    they agree, and Cohen's kappa: (agreement - agreement by chance) / (1 - agreement by
    chance), chance from each side's own pass rate. Kappa is None when chance agreement is
    certain (both sides gave every row the same verdict), where it is undefined."""
    matrix = ConfusionMatrix(
        both_pass=sum(judge and people for judge, people in pairs),
        judge_pass_people_fail=sum(judge and not people for judge, people in pairs),
        judge_fail_people_pass=sum(not judge and people for judge, people in pairs),
        both_fail=sum(not judge and not people for judge, people in pairs),
    )
    n = len(pairs)
    if n == 0:
        return matrix, None, None
    observed = (matrix.both_pass + matrix.both_fail) / n
    judge_pass = (matrix.both_pass + matrix.judge_pass_people_fail) / n
    people_pass = (matrix.both_pass + matrix.judge_fail_people_pass) / n
    chance = judge_pass * people_pass + (1 - judge_pass) * (1 - people_pass)
    kappa = None if chance >= 1 else (observed - chance) / (1 - chance)
    return matrix, observed, kappa
