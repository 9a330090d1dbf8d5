"""Anthropic's usage reports folded into one running TokenCounts.

``message_start`` carries the input side (and an output placeholder), each ``message_delta``
a cumulative figure; the latest report is authoritative, as the SDK treats it, and a field a
report leaves out keeps its earlier value. One-hour cache writes are read from the
``cache_creation`` breakdown, beside the flat ``cache_creation_input_tokens`` (its sum).
"""

from typing import Any

import attrs

from agentspace_gateway.pricing import TokenCounts

_FLAT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def merge_usage(previous: TokenCounts, report: object | None) -> TokenCounts:
    """``previous`` updated by one usage report (an SDK object, a dict, or None)."""
    if report is None:
        return previous
    values = {name: getattr(previous, name) for name in _FLAT_FIELDS}
    for name in _FLAT_FIELDS:
        if (value := _count(_field(report, name))) is not None:
            values[name] = value
    one_hour = previous.cache_creation_1h_input_tokens
    breakdown = _field(report, "cache_creation")
    if breakdown is not None:
        five_minute = _count(_field(breakdown, "ephemeral_5m_input_tokens"))
        reported_1h = _count(_field(breakdown, "ephemeral_1h_input_tokens"))
        if reported_1h is not None:
            one_hour = reported_1h
        # The flat figure is the sum; should a report's parts exceed it (or it be left
        # out), the parts are what was written, so no written token goes unbilled.
        parts = (five_minute or 0) + one_hour
        values["cache_creation_input_tokens"] = max(values["cache_creation_input_tokens"], parts)
    # The one-hour part can never exceed the flat figure it is part of.
    values["cache_creation_input_tokens"] = max(values["cache_creation_input_tokens"], one_hour)
    return attrs.evolve(previous, **values, cache_creation_1h_input_tokens=one_hour)


def _field(report: object, name: str) -> Any:
    if isinstance(report, dict):
        return report.get(name)
    return getattr(report, name, None)


def _count(value: object) -> int | None:
    # bool is an int subclass; a negative or non-integer figure is not a token count.
    if type(value) is int and value >= 0:
        return value
    return None
