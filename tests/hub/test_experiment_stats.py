"""The statistics of an experiment against numbers worked out by hand."""

import math

import pytest

from hub.evaluation.experiment_stats import Z_95, Comparison, compare_arms, extra_units


def _comparison(units: int, low: float, high: float) -> Comparison:
    return Comparison(units, units, 0.0, 0.0, (low + high) / 2, low, high)


def test_two_arms_give_the_difference_and_its_unpooled_interval() -> None:
    # a: mean 1/2, s² = 4 × (1/2)² / 3 = 1/3; b: mean 3/4, s² = (3 × (1/4)² + (3/4)²) / 3 = 1/4
    # se = √(1/3 / 4 + 1/4 / 4) = √(7/48) = 0.381881...; difference 0.25 ± 1.959964 × se.
    figures = compare_arms([0, 0, 1, 1], [1, 1, 1, 0])

    assert (figures.units_a, figures.units_b) == (4, 4)
    assert (figures.rate_a, figures.rate_b, figures.difference) == (0.5, 0.75, 0.25)
    assert figures.ci_low == pytest.approx(-0.498474, abs=1e-6)
    assert figures.ci_high == pytest.approx(0.998474, abs=1e-6)
    assert Z_95 == pytest.approx(1.959964, abs=1e-6)


def test_an_arm_of_one_unit_has_no_interval_and_an_empty_arm_no_rate() -> None:
    one = compare_arms([1.0], [0.0, 1.0])
    assert (one.difference, one.ci_low, one.ci_high) == (-0.5, None, None)
    empty = compare_arms([], [1.0, 0.0])
    assert (empty.rate_a, empty.rate_b, empty.difference) == (None, 0.5, None)


def test_extra_units_grow_with_the_square_of_the_widths_ratio() -> None:
    # 100 units, widths 0.4 and 0.2: 100 × 2² − 100 = 300.
    assert extra_units(_comparison(50, -0.2, 0.2), _comparison(10, 0.0, 0.2)) == 300
    # Widths 0.4 and 0.3: 100 × 16/9 − 100 = 77.8, rounded up.
    assert extra_units(_comparison(50, -0.2, 0.2), _comparison(10, 0.0, 0.3)) == 78
    # Already as narrow: none; a width unknown or 0: unknown.
    assert extra_units(_comparison(50, 0.0, 0.1), _comparison(10, 0.0, 0.3)) == 0
    assert extra_units(_comparison(50, 0.0, 0.1), _comparison(10, 0.2, 0.2)) is None
    no_interval = Comparison(1, 1, 0.0, 1.0, 1.0, None, None)
    assert extra_units(no_interval, _comparison(10, 0.0, 0.3)) is None
    assert math.isclose(_comparison(50, -0.2, 0.2).width or 0, 0.4)
