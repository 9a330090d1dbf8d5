"""The usage ledger: tokens and cost per request, cost in exact integer nano-dollars.

Rows are never re-priced: each keeps the cost split by component and the prices it was
computed with. Their sums per model are read by ``usage_totals``.
"""

from __future__ import annotations

import sqlite3

import aiosqlite
import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.pricing import Cost, TokenCounts
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracy, EstimateAccuracyReader
from agentspace_gateway.storage.usage_totals import ModelUsage, UsageTotals

_COLUMNS = """id, session_id, model, input_tokens, output_tokens, cache_creation_input_tokens,
    cache_read_input_tokens, cost_nanousd, created_at, request_id, input_cost_nanousd,
    output_cost_nanousd, cache_write_cost_nanousd, cache_read_cost_nanousd, priced, prices,
    estimated_input_tokens, stop_reason, cache_creation_1h_input_tokens,
    cache_write_1h_cost_nanousd, output_estimated"""


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
    request_id: str | None = None
    input_cost_nanousd: int = 0
    output_cost_nanousd: int = 0
    cache_write_cost_nanousd: int = 0
    cache_read_cost_nanousd: int = 0
    priced: bool = True
    prices: str | None = None  # JSON: USD per million tokens as exact decimal strings
    estimated_input_tokens: int | None = None
    stop_reason: str | None = None
    # The one-hour parts of cache_creation_input_tokens and cache_write_cost_nanousd.
    cache_creation_1h_input_tokens: int = 0
    cache_write_1h_cost_nanousd: int = 0
    # True when output_tokens is the gateway's estimate of a cut-off reply.
    output_estimated: bool = False


@attrs.frozen
class Attribution:
    """Who a usage row is billed to besides its session: the client key of an HTTP API door
    (None over the WebSocket with the gateway's own credential) and the caller's (sub)agent.
    Written with the row itself, at its first report."""

    client_key_id: int | None
    agent_id: str | None = None
    parent_agent_id: str | None = None


@attrs.frozen(kw_only=True)
class NewUsage:
    session_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_nanousd: int
    input_cost_nanousd: int = 0
    output_cost_nanousd: int = 0
    cache_write_cost_nanousd: int = 0
    cache_read_cost_nanousd: int = 0
    priced: bool = True
    prices: str | None = None
    estimated_input_tokens: int | None = None
    stop_reason: str | None = None
    request_id: str | None = None
    cache_creation_1h_input_tokens: int = 0
    cache_write_1h_cost_nanousd: int = 0
    output_estimated: bool = False
    attribution: Attribution | None = None

    @classmethod
    def of(
        cls,
        counts: TokenCounts,
        cost: Cost,
        *,
        session_id: str,
        model: str,
        request_id: str | None,
        estimated_input_tokens: int | None,
        stop_reason: str | None,
        output_estimated: bool = False,
        attribution: Attribution | None = None,
    ) -> NewUsage:
        """A request's counts and their cost as one ledger row, with the prices used."""
        return cls(
            session_id=session_id,
            model=model,
            input_tokens=counts.input_tokens,
            output_tokens=counts.output_tokens,
            cache_creation_input_tokens=counts.cache_creation_input_tokens,
            cache_read_input_tokens=counts.cache_read_input_tokens,
            cache_creation_1h_input_tokens=counts.cache_creation_1h_input_tokens,
            cost_nanousd=cost.total_nanousd,
            input_cost_nanousd=cost.input_nanousd,
            output_cost_nanousd=cost.output_nanousd,
            cache_write_cost_nanousd=cost.cache_write_nanousd,
            cache_read_cost_nanousd=cost.cache_read_nanousd,
            cache_write_1h_cost_nanousd=cost.cache_write_1h_nanousd,
            priced=cost.priced,
            prices=cost.prices_json(),
            estimated_input_tokens=estimated_input_tokens,
            stop_reason=stop_reason,
            request_id=request_id,
            output_estimated=output_estimated,
            attribution=attribution,
        )


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._totals = UsageTotals(db)

    async def open(self, usage: NewUsage) -> UsageRecord:
        """The row of a request still streaming, with what is known so far (the input side,
        reported when the stream starts): a crash before its end leaves it in the ledger."""
        opened = attrs.evolve(usage, stop_reason=IN_PROGRESS)
        return await self._db.write_in_one_trip(lambda raw: insert_usage(raw, opened))

    async def progress(self, usage_id: int, usage: NewUsage) -> UsageRecord | None:
        """Bring a row still open up to date (the running estimate of a reply's output), so
        a crash leaves it billed; None once it has been settled."""
        still_open = attrs.evolve(usage, stop_reason=IN_PROGRESS)
        return await self._db.write_in_one_trip(lambda raw: update_usage(raw, usage_id, still_open))

    async def close_interrupted(self) -> int:
        """At startup: rows left open by a gateway that died mid-stream are interrupted.
        Their figures stay what was known (the tokens reported by then); returns how many."""

        async def close(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "UPDATE usage_records SET stop_reason = ? WHERE stop_reason = ?",
                (INTERRUPTED, IN_PROGRESS),
            )
            return cursor.rowcount

        return await self._db.write(close)

    async def totals_by_model(
        self,
        *,
        session_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, ModelUsage]:
        """Summed usage per model, optionally for one session and a [since, until) range
        (``usage_totals``)."""
        return await self._totals.by_model(session_id=session_id, since=since, until=until)

    async def estimate_accuracy(self, session_id: str) -> EstimateAccuracy:
        """Actual input tokens against the gateway's estimates, over the session's requests."""
        return await EstimateAccuracyReader(self._db).for_session(session_id)

    async def model_estimate_accuracy(self, model: str) -> EstimateAccuracy:
        """The same over the model's most recent requests, in every session."""
        return await EstimateAccuracyReader(self._db).for_model(model)


# The stop reason of a request still streaming; one left over from a crash becomes
# INTERRUPTED when the gateway starts again. Both are the gateway's, not Anthropic's.
IN_PROGRESS = "in_progress"
INTERRUPTED = "interrupted"


def update_usage(raw: sqlite3.Connection, usage_id: int, usage: NewUsage) -> UsageRecord | None:
    """Inside a caller's transaction, on the connection's thread (``one_trip``): replace an
    open row's figures with the final ones.

    None when no row is open under that id (it was closed, or never committed)."""
    counts = _checked_counts(usage)
    rows = raw.execute(
        f"""
        UPDATE usage_records SET
            input_tokens = ?, output_tokens = ?, cache_creation_input_tokens = ?,
            cache_read_input_tokens = ?, cost_nanousd = ?, input_cost_nanousd = ?,
            output_cost_nanousd = ?, cache_write_cost_nanousd = ?, cache_read_cost_nanousd = ?,
            cache_creation_1h_input_tokens = ?, cache_write_1h_cost_nanousd = ?,
            priced = ?, prices = ?, estimated_input_tokens = ?, stop_reason = ?,
            output_estimated = ?
        WHERE id = ? AND session_id = ? AND request_id IS ? AND stop_reason = '{IN_PROGRESS}'
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - column names and the state are constants
        (
            *counts.values(),
            int(usage.priced),
            usage.prices,
            usage.estimated_input_tokens,
            usage.stop_reason,
            int(usage.output_estimated),
            usage_id,
            usage.session_id,
            usage.request_id,
        ),
    ).fetchall()
    return next((_record(row) for row in rows), None)


def _checked_counts(usage: NewUsage) -> dict[str, int]:
    counts = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cost_nanousd": usage.cost_nanousd,
        "input_cost_nanousd": usage.input_cost_nanousd,
        "output_cost_nanousd": usage.output_cost_nanousd,
        "cache_write_cost_nanousd": usage.cache_write_cost_nanousd,
        "cache_read_cost_nanousd": usage.cache_read_cost_nanousd,
        "cache_creation_1h_input_tokens": usage.cache_creation_1h_input_tokens,
        "cache_write_1h_cost_nanousd": usage.cache_write_1h_cost_nanousd,
    }
    for name, value in counts.items():
        _require_count(name, value)
    return counts


def insert_usage(raw: sqlite3.Connection, usage: NewUsage) -> UsageRecord:
    """Inside a caller's transaction, on the connection's thread (``one_trip``): append one
    request's usage to the ledger."""
    counts = _checked_counts(usage)
    (row,) = raw.execute(
        f"""
        INSERT INTO usage_records (
            session_id, model, input_tokens, output_tokens, cache_creation_input_tokens,
            cache_read_input_tokens, cost_nanousd, input_cost_nanousd, output_cost_nanousd,
            cache_write_cost_nanousd, cache_read_cost_nanousd, cache_creation_1h_input_tokens,
            cache_write_1h_cost_nanousd, created_at, request_id, priced, prices,
            estimated_input_tokens, stop_reason, output_estimated,
            client_key_id, agent_id, parent_agent_id
        )
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - column names are constants
        (
            usage.session_id,
            usage.model,
            *counts.values(),
            utc_now_iso(),
            usage.request_id,
            int(usage.priced),
            usage.prices,
            usage.estimated_input_tokens,
            usage.stop_reason,
            int(usage.output_estimated),
            *_attribution_values(usage.attribution),
        ),
    ).fetchall()
    return _record(row)


def _attribution_values(who: Attribution | None) -> tuple[int | None, str | None, str | None]:
    if who is None:
        return (None, None, None)
    return (who.client_key_id, who.agent_id, who.parent_agent_id)


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
        request_id=row["request_id"],
        input_cost_nanousd=row["input_cost_nanousd"],
        output_cost_nanousd=row["output_cost_nanousd"],
        cache_write_cost_nanousd=row["cache_write_cost_nanousd"],
        cache_read_cost_nanousd=row["cache_read_cost_nanousd"],
        priced=bool(row["priced"]),
        prices=row["prices"],
        estimated_input_tokens=row["estimated_input_tokens"],
        stop_reason=row["stop_reason"],
        cache_creation_1h_input_tokens=row["cache_creation_1h_input_tokens"],
        cache_write_1h_cost_nanousd=row["cache_write_1h_cost_nanousd"],
        output_estimated=bool(row["output_estimated"]),
    )
