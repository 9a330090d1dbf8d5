"""A budget's standing read the long way: a statement or two per budget (``BudgetStore``).

The one-statement reads of the common case (``storage/budget_reservation.py``) are held to
these by a property test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from agentspace_gateway.storage.budget_model import Budget, Standing, period_bounds

BUDGET_COLUMNS = "id, scope_kind, scope_id, period, limit_nanousd, clip_max_tokens, created_at"
# The usage rows a budget counts, by scope kind; the one parameter is the scope id.
_USAGE_SCOPE = {
    "client": "client_key_id = CAST(? AS INTEGER)",
    "session": "session_id = ?",
    "agent": "agent_id = ?",
    "global": "? = ''",
}
_RESERVATION_SCOPE = {
    "client": "r.client_key_id = CAST(? AS INTEGER)",
    "session": "r.session_id = ?",
    "agent": "r.agent_id = ?",
    "global": "? = ''",
}


def budget_row(row: aiosqlite.Row | tuple[Any, ...]) -> Budget:
    return Budget(
        id=row[0],
        scope_kind=row[1],
        scope_id=row[2],
        period=row[3],
        limit_nanousd=row[4],
        clip_max_tokens=bool(row[5]),
        created_at=row[6],
    )


async def _scoped_spend(
    connection: aiosqlite.Connection, budget: Budget, start: str | None, end: str | None
) -> int:
    spent_sql = (
        "SELECT coalesce(sum(cost_nanousd), 0) FROM usage_records"  # noqa: S608 - constants
        f" WHERE priced = 1 AND {_USAGE_SCOPE[budget.scope_kind]}"
    )
    params: list[object] = [budget.scope_id]
    if start is not None:
        spent_sql += " AND created_at >= ? AND created_at < ?"
        params += [start, end]
    async with connection.execute(spent_sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def whole_hours(start: str | None, end: str | None) -> bool:
    """Whether the period starts and ends on whole UTC hours (every zone but a few with
    half-hour offsets), so the hourly sums cover it exactly."""
    return all(bound is None or bound[13:] == ":00:00.000Z" for bound in (start, end))


async def _global_spend(
    connection: aiosqlite.Connection, start: str | None, end: str | None
) -> int:
    """Everything spent in the period, from the hourly sums the ledger's triggers keep in the
    same transaction as each row: one row per hour and model, not every ledger row (a global
    budget is checked on every request). An unpriced row costs 0 there as here."""
    sql = "SELECT coalesce(sum(cost_nanousd), 0) FROM usage_hourly"
    params: list[object] = []
    if start is not None and end is not None:
        sql += " WHERE hour >= ? AND hour < ?"
        params += [start[:13], end[:13]]
    async with connection.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def standing_of(
    connection: aiosqlite.Connection, budget: Budget, now: datetime, zone: ZoneInfo
) -> Standing:
    start, end = period_bounds(budget.period, now, zone)
    if budget.scope_kind == "global" and whole_hours(start, end):
        spent = await _global_spend(connection, start, end)
    else:
        spent = await _scoped_spend(connection, budget, start, end)
    # An open reservation whose usage row is already written counts once: the row's cost as
    # spend, and the rest of the worst case still held. The row may be an open one (opened
    # at the stream's first report, with its input side only): its request can still spend
    # up to the whole reservation.
    reserved_sql = (
        "SELECT coalesce(sum(max(r.amount_nanousd - coalesce(("  # noqa: S608 - constants
        "SELECT u.cost_nanousd FROM usage_records u"
        " WHERE u.request_id = r.request_id AND u.priced = 1), 0), 0)), 0)"
        f" FROM budget_reservations r WHERE r.state = 'open'"
        f" AND {_RESERVATION_SCOPE[budget.scope_kind]}"
    )
    async with connection.execute(reserved_sql, [budget.scope_id]) as cursor:
        reserved_row = await cursor.fetchone()
    assert reserved_row is not None
    return Standing(budget, spent, int(reserved_row[0]), end)


async def budgets_in(connection: aiosqlite.Connection) -> list[Budget]:
    async with connection.execute(
        f"SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY scope_kind, scope_id, period"  # noqa: S608
    ) as cursor:
        return [budget_row(row) for row in await cursor.fetchall()]
