"""Alert thresholds crossed, each recorded once per budget and period.

A threshold is reached by settled spend, the usage rows' cost: not by reservations, which
are worst cases (a budget that clips fills itself with one reservation while the request
may spend a hundredth of it). ``record_crossings`` runs inside the write transaction that
settles a request: the unique key of ``budget_alerts_fired`` makes the record
the decision, so two requests, or a gateway restarted mid-period, never fire one threshold
twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from agentspace_gateway.clock import utc_now_iso

if TYPE_CHECKING:
    from agentspace_gateway.storage.budget_model import Standing


@attrs.frozen
class Crossing:
    """``standing``'s settled spend reached ``threshold_percent`` of its limit."""

    standing: Standing
    threshold_percent: int


def reached(standing: Standing, threshold_percent: int) -> bool:
    # Integers only: spent >= limit * threshold / 100, without rounding.
    return standing.spent_nanousd * 100 >= standing.budget.limit_nanousd * threshold_percent


def record_crossings(
    raw: sqlite3.Connection,
    standings: Iterable[tuple[Standing, str | None]],
    thresholds: tuple[int, ...],
) -> tuple[Crossing, ...]:
    """The thresholds newly reached by each (standing, period start); recorded as fired.
    Inside the settle's transaction, on the connection's thread (``one_trip``)."""
    crossed: list[Crossing] = []
    for standing, period_start in standings:
        for threshold in thresholds:
            if not reached(standing, threshold):
                continue
            cursor = raw.execute(
                "INSERT INTO budget_alerts_fired (budget_id, period_start, threshold_percent,"
                " fired_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (standing.budget.id, period_start or "", threshold, utc_now_iso()),
            )
            if cursor.rowcount > 0:
                crossed.append(Crossing(standing, threshold))
    return tuple(crossed)
