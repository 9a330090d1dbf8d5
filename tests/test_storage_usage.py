"""UsageLedger: exact integer nano-dollars, summed per model, over everything or one session."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from agentspace_gateway.storage import (
    Database,
    ModelUsage,
    NewUsage,
    ReplyRecorder,
    SessionRepository,
    SessionRow,
    UsageLedger,
    UsageRecord,
)

# 2**53 + 1 is the first integer a float cannot hold: a REAL anywhere on the way would show.
BEYOND_FLOAT = 2**53 + 1


@pytest.fixture
def ledger(db: Database) -> UsageLedger:
    return UsageLedger(db)


@pytest.fixture
async def session(db: Database) -> SessionRow:
    return await SessionRepository(db).create(agent_id="main", model="m")


async def record_usage(db: Database, **fields: Any) -> UsageRecord:
    """One usage row, written as the gateway writes them (with no reply beside it)."""
    recorded = await ReplyRecorder(db).record(None, NewUsage(**fields))
    assert recorded.usage is not None
    return recorded.usage


async def record_count(db: Database) -> int:
    row = await db.fetchone("SELECT count(*) FROM usage_records")
    assert row is not None
    count: int = row[0]
    return count


async def test_a_record_round_trips(db: Database, session: SessionRow) -> None:
    record = await record_usage(
        db,
        session_id=session.id,
        model="claude-sonnet-4-5",
        input_tokens=1200,
        output_tokens=345,
        cache_creation_input_tokens=10,
        cache_read_input_tokens=20,
        cost_nanousd=8_775_000,
    )

    assert record == UsageRecord(
        id=record.id,
        session_id=session.id,
        model="claude-sonnet-4-5",
        input_tokens=1200,
        output_tokens=345,
        cache_creation_input_tokens=10,
        cache_read_input_tokens=20,
        cost_nanousd=8_775_000,
        created_at=record.created_at,
    )


async def test_cache_token_counts_default_to_zero(db: Database, session: SessionRow) -> None:
    record = await record_usage(
        db, session_id=session.id, model="m", input_tokens=1, output_tokens=2, cost_nanousd=3
    )
    assert (record.cache_creation_input_tokens, record.cache_read_input_tokens) == (0, 0)


async def test_totals_by_model_sum_exactly_and_filter_by_session(
    ledger: UsageLedger, session: SessionRow, db: Database
) -> None:
    other = await SessionRepository(db).create(agent_id="main", model="m")
    rows: list[tuple[SessionRow, str, int, int, int, int, int]] = [
        (session, "opus", 100, 10, 1, 2, BEYOND_FLOAT),
        (session, "opus", 200, 20, 3, 4, 1),
        (session, "haiku", 300, 30, 0, 0, 100_000_000),
        (other, "opus", 400, 40, 5, 6, 200_000_000),
        (other, "sonnet", 500, 50, 7, 8, 300_000_000),
    ]
    for owner, model, inp, out, created, read, cost in rows:
        await record_usage(
            db,
            session_id=owner.id,
            model=model,
            input_tokens=inp,
            output_tokens=out,
            cache_creation_input_tokens=created,
            cache_read_input_tokens=read,
            cost_nanousd=cost,
        )

    everything = await ledger.totals_by_model()
    assert everything == {
        "haiku": ModelUsage("haiku", 300, 30, 0, 0, 100_000_000, 1),
        "opus": ModelUsage("opus", 700, 70, 9, 12, BEYOND_FLOAT + 200_000_001, 3),
        "sonnet": ModelUsage("sonnet", 500, 50, 7, 8, 300_000_000, 1),
    }
    assert list(everything) == ["haiku", "opus", "sonnet"]
    assert all(type(usage.cost_nanousd) is int for usage in everything.values())

    assert await ledger.totals_by_model(session_id=session.id) == {
        "haiku": ModelUsage("haiku", 300, 30, 0, 0, 100_000_000, 1),
        "opus": ModelUsage("opus", 300, 30, 4, 6, BEYOND_FLOAT + 1, 2),
    }
    assert await ledger.totals_by_model(session_id=other.id) == {
        "opus": ModelUsage("opus", 400, 40, 5, 6, 200_000_000, 1),
        "sonnet": ModelUsage("sonnet", 500, 50, 7, 8, 300_000_000, 1),
    }
    assert await ledger.totals_by_model(session_id="no-such-session") == {}


async def test_an_empty_ledger_has_no_totals(ledger: UsageLedger) -> None:
    assert await ledger.totals_by_model() == {}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("cost_nanousd", 0.5, TypeError),
        ("cost_nanousd", 1.0, TypeError),
        ("cost_nanousd", True, TypeError),
        ("cost_nanousd", "12", TypeError),
        ("cost_nanousd", -1, ValueError),
        ("input_tokens", -1, ValueError),
        ("output_tokens", 2.0, TypeError),
        ("cache_creation_input_tokens", -3, ValueError),
        ("cache_read_input_tokens", None, TypeError),
    ],
)
async def test_counts_must_be_non_negative_ints(
    session: SessionRow,
    db: Database,
    field: str,
    value: Any,
    error: type[Exception],
) -> None:
    counts: dict[str, Any] = {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_nanousd": 1,
    }
    counts[field] = value

    with pytest.raises(error, match=field):
        await record_usage(db, session_id=session.id, model="m", **counts)
    assert await record_count(db) == 0


async def test_usage_for_an_unknown_session_is_refused(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await record_usage(
            db,
            session_id="no-such-session",
            model="m",
            input_tokens=1,
            output_tokens=1,
            cost_nanousd=1,
        )
    assert await record_count(db) == 0
