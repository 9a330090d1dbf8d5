"""Percentiles and the other small sums the scenarios report."""

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as numpy's default does."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def p50(values: Sequence[float]) -> float:
    return percentile(values, 0.50)


def p99(values: Sequence[float]) -> float:
    return percentile(values, 0.99)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of durations, in milliseconds, for the JSON file."""
    return {
        "n": len(seconds),
        "p50": round(ms(p50(seconds)), 3),
        "p99": round(ms(p99(seconds)), 3),
        "max": round(ms(max(seconds)), 3) if seconds else math.nan,
    }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan
