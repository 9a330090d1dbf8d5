"""The worst case a door reserves, and what it does when a budget has no room for it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from agentspace_gateway.metering.budgets import (
    Admitted,
    Budgets,
    Unpriceable,
    max_tokens_within,
    worst_case_nanousd,
)
from agentspace_gateway.pricing import ModelPrices, PriceBook
from agentspace_gateway.storage import Database, NewUsage, ReplyRecorder, SessionRepository
from agentspace_gateway.storage.budget_list import BudgetReader
from agentspace_gateway.storage.budgets import BudgetStore, Refusal, Scope
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracyReader

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# Per token: input 3000, five-minute cache write 3750, output 15000 nano-dollars.
PRICES = ModelPrices(
    input_mtok=Decimal(3),
    output_mtok=Decimal(15),
    cache_read_mtok=Decimal("0.3"),
    cache_write_mtok=Decimal("3.75"),
    source="config",
)


def budgets_of(db: Database) -> tuple[Budgets, BudgetStore]:
    store = BudgetStore(db, ZoneInfo("UTC"))
    return Budgets(store, PriceBook({"m": PRICES}), EstimateAccuracyReader(db)), store


def test_the_worst_case_prices_input_as_a_cache_write_and_all_of_max_tokens() -> None:
    assert worst_case_nanousd(PRICES, 100, 10) == 100 * 3750 + 10 * 15000


@given(
    input_tokens=st.integers(min_value=0, max_value=10**6),
    allowance=st.integers(min_value=0, max_value=10**12),
)
def test_clipped_max_tokens_is_the_largest_that_fits(input_tokens: int, allowance: int) -> None:
    fitting = max_tokens_within(PRICES, input_tokens, allowance)
    if fitting > 0:
        assert worst_case_nanousd(PRICES, input_tokens, fitting) <= allowance
    assert worst_case_nanousd(PRICES, input_tokens, fitting + 1) > allowance


async def test_without_a_budget_nothing_is_reserved_even_for_an_unknown_model(
    db: Database,
) -> None:
    budgets, _ = budgets_of(db)
    admitted = await budgets.reserve(
        Scope(), request_id="r1", model="nobody-knows", estimated_input_tokens=10, max_tokens=5
    )
    assert admitted == Admitted(None, 5)


async def test_an_unpriceable_model_is_refused_while_a_budget_applies(db: Database) -> None:
    budgets, store = budgets_of(db)
    await store.set("global", "", "total", 10**12)
    result = await budgets.reserve(
        Scope(), request_id="r1", model="nobody-knows", estimated_input_tokens=10, max_tokens=5
    )
    assert result == Unpriceable("nobody-knows")


async def test_the_reservation_covers_the_margin_and_a_refusal_says_what_was_needed(
    db: Database,
) -> None:
    budgets, store = budgets_of(db)
    # 100 estimated input tokens become 125 with the safety margin.
    needed = 125 * 3750 + 10 * 15000
    await store.set("global", "", "total", needed)
    admitted = await budgets.reserve(
        Scope(), request_id="r1", model="m", estimated_input_tokens=100, max_tokens=10, now=NOW
    )
    assert isinstance(admitted, Admitted)
    assert admitted.reservation is not None
    assert admitted.reservation.amount_nanousd == needed

    refused = await budgets.reserve(
        Scope(), request_id="r2", model="m", estimated_input_tokens=100, max_tokens=10, now=NOW
    )
    assert isinstance(refused, Refusal)
    assert refused.needed_nanousd == needed
    await budgets.settle(admitted)
    [standing] = await store.standings(NOW)
    assert standing.reserved_nanousd == 0


async def test_a_clipping_budget_lowers_max_tokens_to_what_fits(db: Database) -> None:
    budgets, store = budgets_of(db)
    await store.set("global", "", "total", 125 * 3750 + 4 * 15000 + 14999, clip_max_tokens=True)
    admitted = await budgets.reserve(
        Scope(), request_id="r1", model="m", estimated_input_tokens=100, max_tokens=1000, now=NOW
    )
    assert isinstance(admitted, Admitted)
    assert admitted.max_tokens == 4


async def test_a_model_measured_to_run_over_its_estimate_reserves_more(db: Database) -> None:
    budgets, _ = budgets_of(db)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    # Anthropic counted twice what the gateway estimated.
    await ReplyRecorder(db).record(
        None,
        NewUsage(
            session_id=session.id,
            model="m",
            input_tokens=200,
            output_tokens=1,
            cost_nanousd=1,
            estimated_input_tokens=100,
            request_id="measured",
        ),
    )
    assert await budgets.calibrated_input("m", 100) == 250
    assert await budgets.calibrated_input("other", 100) == 125


async def test_that_no_budget_applies_is_known_without_a_read_until_a_change(db: Database) -> None:
    store = BudgetStore(db, ZoneInfo("UTC"))
    reader = await BudgetReader.open(db.path)
    try:
        budgets = Budgets(
            store, PriceBook({"m": PRICES}), EstimateAccuracyReader(db), reader=reader
        )
        mine = Scope(session_id="s1")
        assert not budgets.none_apply(mine)  # nothing read yet: not known
        assert await reader.all() == []
        assert budgets.none_apply(mine)
        await store.set("session", "s2", "total", 10**9)
        assert not budgets.none_apply(mine)  # a change was announced: not known until read
        await reader.all()
        assert budgets.none_apply(mine)  # the new budget is another session's
        await store.set("session", "s1", "total", 10**9)
        await reader.all()
        assert not budgets.none_apply(mine)
        admitted = await budgets.reserve(
            mine, request_id="r1", model="m", estimated_input_tokens=10, max_tokens=5, now=NOW
        )
        assert isinstance(admitted, Admitted)
        assert admitted.reservation is not None
    finally:
        await reader.close()
