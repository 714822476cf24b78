"""The figures of an experiment: two arms compared over units, and what exposure saves.

Each unit has one outcome (its reported value; a unit with none counts 0). For an arm of n
units with outcomes x:
  rate = mean(x),   s² = Σ(x − rate)² / (n − 1)   (the sample variance)
The difference is rate_b − rate_a; its standard error is unpooled,
  se = √(s_a² / n_a + s_b² / n_b),
and its 95% confidence interval is difference ± z × se with z = Φ⁻¹(0.975) ≈ 1.96 (the
normal approximation). An arm with fewer than two units has no interval.

The diluted analysis counts every unit that had a call in the experiment; the post-exposure
analysis only the units with at least one call whose two answers differed. With n the
diluted analysis's units and w each interval's width (2 × z × se), the diluted analysis would
need n × (w_diluted / w_post)² units for the post-exposure width (a width shrinks as 1/√n), so
  extra units = ⌈n × (w_diluted / w_post)² − n⌉
(none when the diluted interval is already as narrow; unknown when a width is unknown or the
post-exposure width is 0).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Z_95", "Comparison", "compare_arms", "extra_units"]

Z_95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True, slots=True)
class Comparison:
    units_a: int
    units_b: int
    rate_a: float | None
    rate_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_high - self.ci_low


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _variance(values: Sequence[float], mean: float) -> float:
    return sum((x - mean) ** 2 for x in values) / (len(values) - 1)


def compare_arms(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Arm b against arm a: each sequence holds one outcome per unit."""
    rate_a, rate_b = _mean(a), _mean(b)
    if rate_a is None or rate_b is None:
        return Comparison(len(a), len(b), rate_a, rate_b, None, None, None)
    difference = rate_b - rate_a
    if len(a) < 2 or len(b) < 2:
        return Comparison(len(a), len(b), rate_a, rate_b, difference, None, None)
    se = math.sqrt(_variance(a, rate_a) / len(a) + _variance(b, rate_b) / len(b))
    return Comparison(
        len(a), len(b), rate_a, rate_b, difference, difference - Z_95 * se, difference + Z_95 * se
    )


def extra_units(diluted: Comparison, post: Comparison) -> int | None:
    """Units the diluted analysis would need beyond its own to be as narrow as `post`."""
    wide, narrow = diluted.width, post.width
    if wide is None or narrow is None or narrow <= 0:
        return None
    n = diluted.units_a + diluted.units_b
    # Rounded first so that a whole number held as 12.000000000001 is not taken up to 13.
    return max(0, math.ceil(round(n * (wide / narrow) ** 2 - n, 9)))
