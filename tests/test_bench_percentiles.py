"""The bench's one percentile: nearest rank, never an interpolated value."""

from __future__ import annotations

import math

from bench.percentiles import pct


def test_each_percentile_is_a_value_that_was_measured():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert [pct(values, q) for q in (0, 25, 50, 75, 100)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert pct([10.0, 20.0], 50) in (10.0, 20.0)  # nearest rank, not 15
    assert pct(list(map(float, range(1, 101))), 99) == 99.0


def test_one_value_is_every_percentile_and_none_is_nan():
    assert pct([7.0], 1) == pct([7.0], 99) == 7.0
    assert math.isnan(pct([], 50))
