"""The percentile every bench report prints: the nearest rank over the sorted values.

One definition, so that a p95 in one table means what it means in the next. No
interpolation: each figure is a latency some request really had. An empty list has none.
"""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The `q`-th percentile (0–100) of `values`, or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
