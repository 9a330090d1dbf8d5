"""Budgets and reservations: the check and the reservation are one write transaction.

``reserve`` sums, for every budget that applies to a request, the priced spend of the
period and the open reservations, and inserts the new reservation only if each budget still
has room. It runs as one operation through ``Database.write``: the single writer runs it
whole, inside one transaction, so no other reservation or usage row can land between the
sum and the insert, and two requests can never both fit into the same remainder.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from agentspace_gateway.clock import format_utc, utc_now_iso
from agentspace_gateway.storage.budget_crossings import Crossing, record_crossings
from agentspace_gateway.storage.budget_model import (
    PERIODS,
    SCOPE_KINDS,
    Budget,
    BudgetError,
    Period,
    Refusal,
    Released,
    Reservation,
    Scope,
    ScopeKind,
    Standing,
    period_bounds,
)
from agentspace_gateway.storage.budget_reservation import (
    reservation_statement,
    standings_statement,
)
from agentspace_gateway.storage.budget_sums import (
    BUDGET_COLUMNS,
    budget_row,
    budgets_in,
    standing_of,
    whole_hours,
)
from agentspace_gateway.storage.change_marker import BUDGETS, announce_change
from agentspace_gateway.storage.database import Database

# What budgets are made of lives in budget_model; importers know it from here.
__all__ = [
    "PERIODS",
    "SCOPE_KINDS",
    "Budget",
    "BudgetError",
    "BudgetStore",
    "Period",
    "Refusal",
    "Released",
    "Reservation",
    "Scope",
    "ScopeKind",
    "Standing",
    "period_bounds",
]


class BudgetStore:
    def __init__(self, db: Database, zone: ZoneInfo, thresholds: tuple[int, ...] = ()) -> None:
        """``thresholds``: the alert thresholds (percent of a limit) recorded as crossed."""
        self._db = db
        self._zone = zone
        self._thresholds = tuple(sorted(set(thresholds)))

    def _crossings(
        self, raw: sqlite3.Connection, standings: list[Standing], now: datetime
    ) -> tuple[Crossing, ...]:
        if not self._thresholds:
            return ()
        periods = [(s, period_bounds(s.budget.period, now, self._zone)[0]) for s in standings]
        return record_crossings(raw, periods, self._thresholds)

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
                f" RETURNING {BUDGET_COLUMNS}",
                (scope_kind, scope_id, period, limit_nanousd, int(clip_max_tokens), utc_now_iso()),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            return budget_row(row)

        budget = await self._db.write(upsert)
        announce_change(self._db.path, BUDGETS)
        return budget

    async def remove(self, scope_kind: str, scope_id: str, period: str) -> bool:
        async def delete(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute(
                "DELETE FROM budgets WHERE scope_kind = ? AND scope_id = ? AND period = ?",
                (scope_kind, scope_id, period),
            )
            return cursor.rowcount > 0

        removed = await self._db.write(delete)
        announce_change(self._db.path, BUDGETS)
        return removed

    async def all(self) -> list[Budget]:
        return await self._db.read(budgets_in)

    async def standings(self, now: datetime) -> list[Standing]:
        async def everything(connection: aiosqlite.Connection) -> list[Standing]:
            listed = await budgets_in(connection)
            return [await standing_of(connection, b, now, self._zone) for b in listed]

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
                standing = await standing_of(connection, budget, now, self._zone)
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
        sql, params = reservation_statement(
            **self._where(scope, now),
            request_id=request_id,
            model=model,
            amount_nanousd=amount_nanousd,
            now=format_utc(now),
            measured_ratio=measured_ratio,
        )

        def insert(raw: sqlite3.Connection) -> bool:
            return bool(raw.execute(sql, params).fetchall())

        # A reservation lost in a crash is no loss: the next start releases every open one.
        # One trip to the writer's thread: the synchronous switch, BEGIN, the statement and
        # COMMIT (with any writes of its kind queued beside it), not five.
        if await self._db.write_in_one_trip(insert, durable=False):
            return Reservation(request_id, amount_nanousd)
        return None

    async def settle(self, request_id: str) -> bool:
        """Release the reservation of ``request_id``: its usage row carries what was billed."""
        return (await self.release(request_id)).released

    async def release(self, request_id: str, now: datetime | None = None) -> Released:
        """``settle``, and the alert thresholds the settled spend has reached, recorded as
        fired in the same transaction (each once per budget and period)."""
        moment = now or datetime.now(UTC)

        def release_one(raw: sqlite3.Connection) -> Released:
            released = raw.execute(
                "UPDATE budget_reservations SET state = 'settled', settled_at = ?"
                " WHERE request_id = ? AND state = 'open'"
                " RETURNING session_id, client_key_id, agent_id",
                (utc_now_iso(), request_id),
            ).fetchall()
            if not released:
                return Released(False)
            if not self._thresholds:
                return Released(True)
            [row] = released
            scope = Scope(session_id=row[0], client_key_id=row[1], agent_id=row[2])
            standings = self._scope_standings(raw, scope, moment)
            return Released(True, self._crossings(raw, standings, moment))

        # BEGIN to COMMIT in one trip to the writer's thread (storage/one_trip.py).
        return await self._db.write_in_one_trip(release_one)

    async def standings_of(self, scope: Scope, now: datetime) -> list[Standing]:
        """The standings of the budgets that apply to ``scope``, in ``standings``' order."""
        return await self._db.read_in_one_trip(lambda raw: self._scope_standings(raw, scope, now))

    def _scope_standings(
        self, raw: sqlite3.Connection, scope: Scope, now: datetime
    ) -> list[Standing]:
        """``standings_of`` as one statement (``_standing`` reads two per budget)."""
        sql, params = standings_statement(**self._where(scope, now))
        rows = raw.execute(sql, params).fetchall()
        return [Standing(budget_row(row[:7]), int(row[7]), int(row[8]), row[9]) for row in rows]

    def _where(self, scope: Scope, now: datetime) -> dict[str, Any]:
        """The scope and its periods, as both one-statement paths give them."""
        day = period_bounds("day", now, self._zone)
        month = period_bounds("month", now, self._zone)
        return {
            "whole_hours": whole_hours(*day) and whole_hours(*month),
            "day": day,
            "month": month,
            "session_id": scope.session_id,
            "client_key_id": scope.client_key_id,
            "agent_id": scope.agent_id,
        }

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
