"""Budgets and reservations: the check and the reservation are one write transaction.

``reserve`` sums, for every budget that applies to a request, the priced spend of the
period and the open reservations, and inserts the new reservation only if each budget still
has room. It runs as one operation through ``Database.write``: the single writer runs it
whole, inside one transaction, so no other reservation or usage row can land between the
sum and the insert, and two requests can never both fit into the same remainder.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiosqlite
import attrs

from agentspace_gateway.clock import format_utc, utc_now_iso
from agentspace_gateway.storage.budget_crossings import Crossing, record_crossings
from agentspace_gateway.storage.budget_marker import announce_change
from agentspace_gateway.storage.budget_reservation import (
    reservation_statement,
    standings_statement,
)
from agentspace_gateway.storage.database import Database

ScopeKind = Literal["client", "session", "agent", "global"]
Period = Literal["day", "month", "total"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("client", "session", "agent", "global")
PERIODS: tuple[Period, ...] = ("day", "month", "total")

_BUDGET_COLUMNS = "id, scope_kind, scope_id, period, limit_nanousd, clip_max_tokens, created_at"
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


class BudgetError(ValueError):
    """A budget operation the caller can correct (bad scope, period or amount)."""


@attrs.frozen
class Budget:
    id: int
    scope_kind: ScopeKind
    scope_id: str
    period: Period
    limit_nanousd: int
    clip_max_tokens: bool
    created_at: str


@attrs.frozen
class Scope:
    """What a request is attributed to: each budget whose scope matches applies to it."""

    session_id: str | None = None
    client_key_id: int | None = None
    agent_id: str | None = None

    def matches(self, budget: Budget) -> bool:
        match budget.scope_kind:
            case "global":
                return True
            case "session":
                return budget.scope_id == self.session_id
            case "client":
                return self.client_key_id is not None and budget.scope_id == str(self.client_key_id)
            case "agent":
                return budget.scope_id == self.agent_id


@attrs.frozen
class Standing:
    """One budget as it stands: spend in the current period and what is reserved."""

    budget: Budget
    spent_nanousd: int
    reserved_nanousd: int
    resets_at: str | None

    @property
    def remaining_nanousd(self) -> int:
        return max(0, self.budget.limit_nanousd - self.spent_nanousd - self.reserved_nanousd)


@attrs.frozen
class Reservation:
    request_id: str
    amount_nanousd: int


@attrs.frozen
class Released:
    """A settle: whether an open reservation was released, and thresholds crossed by it."""

    released: bool
    crossed: tuple[Crossing, ...] = ()


@attrs.frozen
class Refusal:
    """The tightest budget the request did not fit into, and what it needed."""

    standing: Standing
    needed_nanousd: int


def period_bounds(period: Period, now: datetime, zone: ZoneInfo) -> tuple[str | None, str | None]:
    """The start and end of the period holding ``now``, as stored UTC text (None: unbounded)."""
    if period == "total":
        return None, None
    local = now.astimezone(zone)
    if period == "day":
        start_day = local.date()
        end_day = start_day + timedelta(days=1)
    else:
        start_day = local.date().replace(day=1)
        end_day = (start_day + timedelta(days=32)).replace(day=1)
    start = datetime.combine(start_day, time(), tzinfo=zone)
    end = datetime.combine(end_day, time(), tzinfo=zone)
    return format_utc(start), format_utc(end)


def _budget(row: aiosqlite.Row | tuple[Any, ...]) -> Budget:
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


def _whole_hours(start: str | None, end: str | None) -> bool:
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


async def _standing(
    connection: aiosqlite.Connection, budget: Budget, now: datetime, zone: ZoneInfo
) -> Standing:
    start, end = period_bounds(budget.period, now, zone)
    if budget.scope_kind == "global" and _whole_hours(start, end):
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
        f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY scope_kind, scope_id, period"  # noqa: S608
    ) as cursor:
        return [_budget(row) for row in await cursor.fetchall()]


class BudgetStore:
    def __init__(self, db: Database, zone: ZoneInfo, thresholds: tuple[int, ...] = ()) -> None:
        """``thresholds``: the alert thresholds (percent of a limit) recorded as crossed."""
        self._db = db
        self._zone = zone
        self._thresholds = tuple(sorted(set(thresholds)))

    async def _crossings(
        self, connection: aiosqlite.Connection, standings: list[Standing], now: datetime
    ) -> tuple[Crossing, ...]:
        if not self._thresholds:
            return ()
        periods = [(s, period_bounds(s.budget.period, now, self._zone)[0]) for s in standings]
        return await record_crossings(connection, periods, self._thresholds)

    async def set(
        self,
        scope_kind: str,
        scope_id: str,
        period: str,
        limit_nanousd: int,
        *,
        clip_max_tokens: bool = False,
    ) -> Budget:
        """Create the budget of this scope and period, or change its limit."""
        if scope_kind not in SCOPE_KINDS:
            raise BudgetError(f"scope must be one of {', '.join(SCOPE_KINDS)}, not {scope_kind!r}")
        if period not in PERIODS:
            raise BudgetError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
        if limit_nanousd < 0:
            raise BudgetError("a budget's limit cannot be negative")
        if (scope_kind == "global") != (scope_id == ""):
            raise BudgetError("a global budget has no scope id; every other budget needs one")

        async def upsert(connection: aiosqlite.Connection) -> Budget:
            async with connection.execute(
                "INSERT INTO budgets (scope_kind, scope_id, period, limit_nanousd,"  # noqa: S608
                " clip_max_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET"
                " limit_nanousd = excluded.limit_nanousd,"
                " clip_max_tokens = excluded.clip_max_tokens"
                f" RETURNING {_BUDGET_COLUMNS}",
                (scope_kind, scope_id, period, limit_nanousd, int(clip_max_tokens), utc_now_iso()),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            return _budget(row)

        budget = await self._db.write(upsert)
        announce_change(self._db.path)
        return budget

    async def remove(self, scope_kind: str, scope_id: str, period: str) -> bool:
        async def delete(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute(
                "DELETE FROM budgets WHERE scope_kind = ? AND scope_id = ? AND period = ?",
                (scope_kind, scope_id, period),
            )
            return cursor.rowcount > 0

        removed = await self._db.write(delete)
        announce_change(self._db.path)
        return removed

    async def all(self) -> list[Budget]:
        return await self._db.read(budgets_in)

    async def standings(self, now: datetime) -> list[Standing]:
        async def everything(connection: aiosqlite.Connection) -> list[Standing]:
            listed = await budgets_in(connection)
            return [await _standing(connection, b, now, self._zone) for b in listed]

        return await self._db.read(everything)

    async def reserve(
        self, scope: Scope, request_id: str, model: str, amount_nanousd: int, now: datetime
    ) -> Reservation | Refusal | None:
        """Reserve ``amount_nanousd`` against every budget of ``scope``, or refuse.

        None: no budget applies, and nothing is reserved.
        """
        if amount_nanousd < 0:
            raise BudgetError("a reservation cannot be negative")

        async def check_and_reserve(
            connection: aiosqlite.Connection,
        ) -> Reservation | Refusal | None:
            applying = [b for b in await budgets_in(connection) if scope.matches(b)]
            if not applying:
                return None
            for budget in applying:
                standing = await _standing(connection, budget, now, self._zone)
                if standing.remaining_nanousd < amount_nanousd:
                    return Refusal(standing, amount_nanousd)
            await connection.execute(
                "INSERT INTO budget_reservations (request_id, session_id, client_key_id,"
                " agent_id, model, amount_nanousd, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                (
                    request_id,
                    scope.session_id,
                    scope.client_key_id,
                    scope.agent_id,
                    model,
                    amount_nanousd,
                    format_utc(now),
                ),
            )
            return Reservation(request_id, amount_nanousd)

        # A reservation lost in a crash is no loss: the next start releases every open one.
        return await self._db.write(check_and_reserve, durable=False)

    async def reserve_at_once(
        self,
        scope: Scope,
        request_id: str,
        model: str,
        amount_nanousd: int,
        now: datetime,
        measured_ratio: float | None,
    ) -> Reservation | None:
        """``reserve`` as one statement (``storage/budget_reservation.py``), for the case
        that matters to speed: it only reserves. None: it did not (no budget applies, one
        has no room, or the model's largest measured input ratio is no longer
        ``measured_ratio``); ``reserve`` then says why."""
        if amount_nanousd < 0:
            raise BudgetError("a reservation cannot be negative")
        day = period_bounds("day", now, self._zone)
        month = period_bounds("month", now, self._zone)
        sql, params = reservation_statement(
            whole_hours=_whole_hours(*day) and _whole_hours(*month),
            day=day,
            month=month,
            session_id=scope.session_id,
            client_key_id=scope.client_key_id,
            agent_id=scope.agent_id,
            request_id=request_id,
            model=model,
            amount_nanousd=amount_nanousd,
            now=format_utc(now),
            measured_ratio=measured_ratio,
        )

        async def insert(connection: aiosqlite.Connection) -> bool:
            return bool(await connection.execute_fetchall(sql, params))

        # A reservation lost in a crash is no loss: the next start releases every open one.
        if await self._db.write(insert, durable=False):
            return Reservation(request_id, amount_nanousd)
        return None

    async def settle(self, request_id: str) -> bool:
        """Release the reservation of ``request_id``: its usage row carries what was billed."""
        return (await self.release(request_id)).released

    async def release(self, request_id: str, now: datetime | None = None) -> Released:
        """``settle``, and the alert thresholds the settled spend has reached, recorded as
        fired in the same transaction (each once per budget and period)."""
        moment = now or datetime.now(UTC)

        async def release_one(connection: aiosqlite.Connection) -> Released:
            # One statement each (execute_fetchall: one hop to the writer's thread).
            released = await connection.execute_fetchall(
                "UPDATE budget_reservations SET state = 'settled', settled_at = ?"
                " WHERE request_id = ? AND state = 'open'"
                " RETURNING session_id, client_key_id, agent_id",
                (utc_now_iso(), request_id),
            )
            if not released:
                return Released(False)
            if not self._thresholds:
                return Released(True)
            [row] = released
            scope = Scope(session_id=row[0], client_key_id=row[1], agent_id=row[2])
            standings = await self._scope_standings(connection, scope, moment)
            return Released(True, await self._crossings(connection, standings, moment))

        return await self._db.write(release_one)

    async def standings_of(self, scope: Scope, now: datetime) -> list[Standing]:
        """The standings of the budgets that apply to ``scope``, in ``standings``' order."""
        return await self._db.read(lambda c: self._scope_standings(c, scope, now))

    async def _scope_standings(
        self, connection: aiosqlite.Connection, scope: Scope, now: datetime
    ) -> list[Standing]:
        """``standings_of`` as one statement (``_standing`` reads two per budget)."""
        day = period_bounds("day", now, self._zone)
        month = period_bounds("month", now, self._zone)
        sql, params = standings_statement(
            whole_hours=_whole_hours(*day) and _whole_hours(*month),
            day=day,
            month=month,
            session_id=scope.session_id,
            client_key_id=scope.client_key_id,
            agent_id=scope.agent_id,
        )
        rows = await connection.execute_fetchall(sql, params)
        return [Standing(_budget(row[:7]), int(row[7]), int(row[8]), row[9]) for row in rows]

    async def settle_abandoned(self) -> int:
        """At startup: settle what a dead process left open; its usage rows hold the spend."""

        async def release_all(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "UPDATE budget_reservations SET state = 'settled', settled_at = ?"
                " WHERE state = 'open'",
                (utc_now_iso(),),
            )
            return cursor.rowcount

        return await self._db.write(release_all)
