"""Usage summed per model (``UsageLedger.totals_by_model``), read from the ledger
(``usage_records``) and its hourly sums (``usage_hourly``)."""

from __future__ import annotations

import sqlite3

import aiosqlite
import attrs

from agentspace_gateway.storage import usage_hours
from agentspace_gateway.storage.database import Database

# sum() over INTEGER stays an exact integer (total() would return a REAL). Both give, per
# model: input, output, cache write and cache read tokens, cost, requests, unpriced
# requests, one-hour cache write tokens, requests with estimated output.
_LEDGER_TOTALS = """
    SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens),
           sum(cache_read_input_tokens), sum(cost_nanousd), count(*), sum(priced = 0),
           sum(cache_creation_1h_input_tokens), sum(output_estimated)
    FROM usage_records
"""
_HOURLY_TOTALS = """
    SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens),
           sum(cache_read_input_tokens), sum(cost_nanousd), sum(request_count),
           sum(unpriced_count), sum(cache_creation_1h_input_tokens), sum(estimated_count)
    FROM usage_hourly
"""
_SUMS = 9


@attrs.frozen
class ModelUsage:
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_nanousd: int
    request_count: int
    # False when some request for this model had no known price: the cost is a floor.
    priced: bool = True
    # The one-hour part of cache_creation_input_tokens.
    cache_creation_1h_input_tokens: int = 0
    # Requests whose output count is the gateway's estimate of a cut-off reply.
    estimated_count: int = 0


class UsageTotals:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def by_model(
        self,
        *,
        session_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, ModelUsage]:
        """Summed usage per model, optionally for one session and a [since, until) range.

        Over every session, whole hours are read from the hourly sums and only the partial
        hours at the range's ends from the ledger; one session's rows come from the ledger
        through its index.
        """
        parts = None if session_id is not None else usage_hours.split(since, until)

        async def read(connection: aiosqlite.Connection) -> list[sqlite3.Row]:
            if parts is None:
                return await _ledger_totals(connection, session_id, since, until)
            # Nothing is written between these queries (operations run one at a time), so
            # a row is counted exactly once: in its hour or at an edge.
            rows = await _hourly_totals(connection, parts.first_hour, parts.end_hour)
            for low, high in parts.edges:
                rows += await _ledger_totals(connection, None, low, high)
            return rows

        totals: dict[str, list[int]] = {}
        for row in await self._db.read(read):
            sums = totals.setdefault(row[0], [0] * _SUMS)
            for index in range(_SUMS):
                sums[index] += row[index + 1] or 0
        return {
            model: ModelUsage(
                model=model,
                input_tokens=sums[0],
                output_tokens=sums[1],
                cache_creation_input_tokens=sums[2],
                cache_read_input_tokens=sums[3],
                cost_nanousd=sums[4],
                request_count=sums[5],
                priced=sums[6] == 0,
                cache_creation_1h_input_tokens=sums[7],
                estimated_count=sums[8],
            )
            for model, sums in sorted(totals.items())
        }


async def _ledger_totals(
    connection: aiosqlite.Connection,
    session_id: str | None,
    since: str | None,
    until: str | None,
) -> list[sqlite3.Row]:
    where, params = _where(
        ("session_id = ?", session_id), ("created_at >= ?", since), ("created_at < ?", until)
    )
    return list(
        await connection.execute_fetchall(_LEDGER_TOTALS + where + "GROUP BY model", params)
    )


async def _hourly_totals(
    connection: aiosqlite.Connection, first_hour: str | None, end_hour: str | None
) -> list[sqlite3.Row]:
    where, params = _where(("hour >= ?", first_hour), ("hour < ?", end_hour))
    return list(
        await connection.execute_fetchall(_HOURLY_TOTALS + where + "GROUP BY model", params)
    )


def _where(*filters: tuple[str, str | None]) -> tuple[str, list[str]]:
    """A WHERE clause of the filters whose value is set (conditions are constants)."""
    chosen = [(condition, value) for condition, value in filters if value is not None]
    if not chosen:
        return "", []
    clause = "WHERE " + " AND ".join(condition for condition, _ in chosen) + " "
    return clause, [value for _, value in chosen]
