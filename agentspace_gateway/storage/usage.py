"""The usage ledger: tokens and cost per request, cost in exact integer nano-dollars."""

from __future__ import annotations

import sqlite3

import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database

NANOUSD_PER_USD = 1_000_000_000

# sum() over INTEGER stays an exact integer (total() would return a REAL).
_TOTALS = """
    SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens),
           sum(cache_read_input_tokens), sum(cost_nanousd), count(*)
    FROM usage_records
"""


@attrs.frozen
class UsageRecord:
    id: int
    session_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_nanousd: int
    created_at: str


@attrs.frozen
class ModelUsage:
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_nanousd: int
    request_count: int


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        session_id: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cost_nanousd: int,
    ) -> UsageRecord:
        counts = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
            "cost_nanousd": cost_nanousd,
        }
        for name, value in counts.items():
            _require_count(name, value)
        async with self._db.transaction() as connection:
            rows = await connection.execute_fetchall(
                """
                INSERT INTO usage_records (
                    session_id, model, input_tokens, output_tokens, cache_creation_input_tokens,
                    cache_read_input_tokens, cost_nanousd, created_at
                )
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                RETURNING id, session_id, model, input_tokens, output_tokens,
                          cache_creation_input_tokens, cache_read_input_tokens, cost_nanousd,
                          created_at
                """,
                (session_id, model, *counts.values(), utc_now_iso()),
            )
        return _record(next(iter(rows)))

    async def totals_by_model(self, *, session_id: str | None = None) -> dict[str, ModelUsage]:
        """Summed usage per model, over everything or over one session; ordered by model."""
        if session_id is None:
            rows = await self._db.fetchall(_TOTALS + "GROUP BY model ORDER BY model")
        else:
            rows = await self._db.fetchall(
                _TOTALS + "WHERE session_id = ? GROUP BY model ORDER BY model", (session_id,)
            )
        return {row[0]: ModelUsage(*row) for row in rows}


def _require_count(name: str, value: int) -> None:
    # A float cost is the bug this ledger exists to prevent; bool is an int subclass.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _record(row: sqlite3.Row) -> UsageRecord:
    return UsageRecord(
        id=row["id"],
        session_id=row["session_id"],
        model=row["model"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_creation_input_tokens=row["cache_creation_input_tokens"],
        cache_read_input_tokens=row["cache_read_input_tokens"],
        cost_nanousd=row["cost_nanousd"],
        created_at=row["created_at"],
    )
