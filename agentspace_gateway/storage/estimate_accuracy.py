"""How far the gateway's input-token estimates run from Anthropic's counts.

Only requests for which Anthropic reported input are measured: a row with zero input (a
stream that failed before ``message_start``) has no count to compare, and counting it as
"0 actual" made the estimates look 100% high. Each request's own ratio is kept, not only
the cumulative one, because the cumulative figure hides a per-request spread of about a
third either way.
"""

from __future__ import annotations

import math
import sqlite3
import statistics

import aiosqlite
import attrs

from agentspace_gateway.storage.database import Database

# A session's measured ratio calibrates its next estimate once it has this many requests;
# until then the model's, over every session, does.
SESSION_REQUESTS_TO_CALIBRATE = 3
# The most recent requests measured per session or model: recent prompts are the best guide
# to the next one, and the read stays bounded however long the ledger grows.
RECENT_REQUESTS = 500

_MEASURED = """
    SELECT input_tokens + cache_creation_input_tokens + cache_read_input_tokens,
           estimated_input_tokens
    FROM usage_records
    WHERE {column} = ? AND estimated_input_tokens > 0
      AND input_tokens + cache_creation_input_tokens + cache_read_input_tokens > 0
    ORDER BY created_at DESC, id DESC
    LIMIT {limit}
"""
_SESSION_TOTALS = """
    SELECT coalesce(sum(input_tokens + cache_creation_input_tokens + cache_read_input_tokens), 0),
           coalesce(sum(estimated_input_tokens), 0)
    FROM usage_records
    WHERE session_id = ? AND estimated_input_tokens > 0
      AND input_tokens + cache_creation_input_tokens + cache_read_input_tokens > 0
"""


@attrs.frozen
class Spread:
    minimum: float
    p10: float
    median: float
    p90: float
    maximum: float


@attrs.frozen
class EstimateAccuracy:
    """Summed actual and estimated input tokens, and each request's own ratio."""

    actual_input_tokens: int
    estimated_input_tokens: int
    # actual / estimated per measured request, most recent RECENT_REQUESTS, in no order.
    ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.estimated_input_tokens == 0:
            return None
        return self.actual_input_tokens / self.estimated_input_tokens

    @property
    def request_count(self) -> int:
        return len(self.ratios)

    def spread(self) -> Spread | None:
        if not self.ratios:
            return None
        ordered = sorted(self.ratios)
        return Spread(
            minimum=ordered[0],
            p10=_nearest_rank(ordered, 0.1),
            median=statistics.median(ordered),
            p90=_nearest_rank(ordered, 0.9),
            maximum=ordered[-1],
        )


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class EstimateAccuracyReader:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_session(self, session_id: str) -> EstimateAccuracy:
        """Over every measured request of the session (ratios: the most recent ones)."""

        async def read(connection: aiosqlite.Connection) -> EstimateAccuracy:
            cursor = await connection.execute(_SESSION_TOTALS, (session_id,))
            totals = await cursor.fetchone()
            assert totals is not None  # an aggregate always yields one row
            rows = await _measured(connection, "session_id", session_id)
            return EstimateAccuracy(totals[0], totals[1], _ratios(rows))

        return await self._db.read(read)

    async def for_model(self, model: str) -> EstimateAccuracy:
        """Over the model's most recent measured requests, in every session."""

        async def read(connection: aiosqlite.Connection) -> EstimateAccuracy:
            rows = await _measured(connection, "model", model)
            return EstimateAccuracy(
                sum(row[0] for row in rows), sum(row[1] for row in rows), _ratios(rows)
            )

        return await self._db.read(read)


async def _measured(connection: aiosqlite.Connection, column: str, value: str) -> list[sqlite3.Row]:
    query = _MEASURED.format(column=column, limit=RECENT_REQUESTS)
    return list(await connection.execute_fetchall(query, (value,)))


def _ratios(rows: list[sqlite3.Row]) -> tuple[float, ...]:
    return tuple(row[0] / row[1] for row in rows)
