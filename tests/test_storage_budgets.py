"""BudgetStore: the check and the reservation are one step, so a limit is never overshot."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentspace_gateway.storage import (
    Database,
    NewUsage,
    ReplyRecorder,
    SessionRepository,
    apply_migrations,
)
from agentspace_gateway.storage.budgets import (
    BudgetError,
    BudgetStore,
    Refusal,
    Reservation,
    Scope,
    period_bounds,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


async def bill(db: Database, session_id: str, request_id: str, cost: int) -> None:
    await ReplyRecorder(db).record(
        None,
        NewUsage(
            session_id=session_id,
            model="m",
            input_tokens=1,
            output_tokens=1,
            cost_nanousd=cost,
            request_id=request_id,
        ),
    )


async def test_a_request_that_fits_is_reserved_and_one_that_does_not_is_refused(
    db: Database,
) -> None:
    store = BudgetStore(db, UTC_ZONE)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await store.set("session", session.id, "total", 1000)
    scope = Scope(session_id=session.id)

    assert await store.reserve(scope, "r1", "m", 600, NOW) == Reservation("r1", 600)
    refused = await store.reserve(scope, "r2", "m", 401, NOW)

    assert isinstance(refused, Refusal)
    assert (refused.standing.spent_nanousd, refused.standing.reserved_nanousd) == (0, 600)
    assert refused.needed_nanousd == 401
    assert await store.reserve(scope, "r3", "m", 400, NOW) == Reservation("r3", 400)


async def test_no_budget_applies_to_another_scope(db: Database) -> None:
    store = BudgetStore(db, UTC_ZONE)
    await store.set("session", "someone-else", "total", 0)

    assert await store.reserve(Scope(session_id="mine"), "r1", "m", 10, NOW) is None


async def test_a_global_budget_applies_to_every_request(db: Database) -> None:
    store = BudgetStore(db, UTC_ZONE)
    await store.set("global", "", "day", 5)

    refused = await store.reserve(Scope(client_key_id=3, agent_id="a"), "r1", "m", 6, NOW)

    assert isinstance(refused, Refusal)
    assert refused.standing.budget.scope_kind == "global"


async def test_billed_spend_counts_once_and_settling_releases_the_rest(db: Database) -> None:
    store = BudgetStore(db, UTC_ZONE)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await store.set("session", session.id, "total", 1000)
    scope = Scope(session_id=session.id)
    await store.reserve(scope, "r1", "m", 900, NOW)

    # Billed but not yet settled (a stream's row opens at its first report): the row counts
    # as spend and the reservation holds the rest of its worst case, never both in full.
    await bill(db, session.id, "r1", 300)
    [standing] = await store.standings(NOW)
    assert (standing.spent_nanousd, standing.reserved_nanousd) == (300, 600)

    assert await store.settle("r1") is True
    assert await store.settle("r1") is False
    [standing] = await store.standings(NOW)
    assert (standing.spent_nanousd, standing.reserved_nanousd, standing.remaining_nanousd) == (
        300,
        0,
        700,
    )


async def test_reservations_left_open_by_a_dead_process_are_settled(db: Database) -> None:
    store = BudgetStore(db, UTC_ZONE)
    await store.set("global", "", "total", 100)
    await store.reserve(Scope(), "r1", "m", 60, NOW)
    await store.reserve(Scope(), "r2", "m", 40, NOW)

    assert await store.settle_abandoned() == 2
    [standing] = await store.standings(NOW)
    assert standing.reserved_nanousd == 0
    assert await store.settle_abandoned() == 0


async def test_concurrent_reservations_never_share_a_remainder(db: Database) -> None:
    store = BudgetStore(db, UTC_ZONE)
    await store.set("global", "", "total", 50 * 7)

    results = await asyncio.gather(
        *(store.reserve(Scope(), f"r{i}", "m", 7, NOW) for i in range(200))
    )

    assert sum(isinstance(r, Reservation) for r in results) == 50
    [standing] = await store.standings(NOW)
    assert standing.reserved_nanousd == 50 * 7


async def test_a_daily_budget_counts_only_todays_spend_in_its_time_zone(db: Database) -> None:
    zone = ZoneInfo("America/New_York")
    store = BudgetStore(db, zone)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await store.set("global", "", "day", 1000)
    await bill(db, session.id, "today", 100)

    # Usage rows are stamped with the real clock: the check runs at the same moment.
    billed_at = datetime.now(UTC)
    [standing] = await store.standings(billed_at)
    assert standing.spent_nanousd == 100
    [later] = await store.standings(billed_at + timedelta(days=1))
    assert later.spent_nanousd == 0
    # 04:59 UTC is still yesterday in New York, 05:00 UTC is its midnight (EST, UTC-5).
    yesterday = datetime(2026, 12, 7, 4, 59, tzinfo=UTC)
    assert period_bounds("day", yesterday, zone) == (
        "2026-12-06T05:00:00.000Z",
        "2026-12-07T05:00:00.000Z",
    )


def test_period_bounds_of_a_month_and_of_all_time() -> None:
    assert period_bounds("month", NOW, UTC_ZONE) == (
        "2026-12-01T00:00:00.000Z",
        "2027-01-01T00:00:00.000Z",
    )
    assert period_bounds("total", NOW, UTC_ZONE) == (None, None)


@pytest.mark.parametrize(
    ("kind", "scope_id", "period", "limit"),
    [
        ("team", "x", "day", 1),
        ("session", "x", "week", 1),
        ("session", "x", "day", -1),
        ("global", "x", "day", 1),
        ("session", "", "day", 1),
    ],
)
async def test_a_bad_budget_is_refused_and_nothing_is_written(
    db: Database, kind: str, scope_id: str, period: str, limit: int
) -> None:
    store = BudgetStore(db, UTC_ZONE)
    with pytest.raises(BudgetError):
        await store.set(kind, scope_id, period, limit)
    assert await store.standings(NOW) == []


# Each request: its reservation, what it really cost (at most the reservation), and whether
# it ends by a bill or dies before one.
_requests = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=500),
        st.floats(min_value=0, max_value=1),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None)
@given(limit=st.integers(min_value=0, max_value=3000), requests=_requests)
def test_spent_and_reserved_never_exceed_the_limit_and_settling_keeps_the_ledger(
    limit: int, requests: list[tuple[int, float, bool]]
) -> None:
    async def run(home: Path) -> None:
        db = await Database.open(home / "agentspace.db")
        try:
            await apply_migrations(db)
            store = BudgetStore(db, UTC_ZONE)
            session = await SessionRepository(db).create(agent_id="main", model="m")
            await store.set("global", "", "total", limit)
            billed = 0
            for index, (amount, share, completes) in enumerate(requests):
                request_id = f"r{index}"
                before = (await store.standings(NOW))[0]
                result = await store.reserve(
                    Scope(session_id=session.id), request_id, "m", amount, NOW
                )
                # Refused exactly when the remainder could not cover the reservation.
                assert isinstance(result, Reservation) == (before.remaining_nanousd >= amount)
                standing = (await store.standings(NOW))[0]
                assert standing.spent_nanousd + standing.reserved_nanousd <= limit
                if isinstance(result, Reservation) and completes:
                    cost = int(amount * share)
                    await bill(db, session.id, request_id, cost)
                    billed += cost
                    await store.settle(request_id)
            await store.settle_abandoned()
            [final] = await store.standings(NOW)
            assert (final.spent_nanousd, final.reserved_nanousd) == (billed, 0)
            assert final.spent_nanousd <= limit
        finally:
            await db.close()

    with tempfile.TemporaryDirectory() as home:
        asyncio.run(run(Path(home)))
