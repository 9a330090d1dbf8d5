"""Costs in nano-dollars: hand-worked from Anthropic's published prices and cross-checked
against genai-prices' own calculation."""

import socket
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from genai_prices import data_snapshot as genai_snapshot
from genai_prices.types import PriceCalculation

from agentspace_gateway import pricing
from agentspace_gateway.pricing import (
    Cost,
    ModelPrices,
    PriceBook,
    TokenCounts,
    usd,
    usd_text,
)

# Prices are dated in genai-prices (claude-sonnet-4-6 dropped its long-context tier on
# 2026-03-13), so every figure here is priced at a fixed moment.
AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
BEFORE_FLAT_SONNET_4_6 = datetime(2026, 3, 12, 23, 59, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing must never touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def sonnet_4_5_prices() -> ModelPrices:
    return ModelPrices(
        input_mtok=Decimal(3),
        output_mtok=Decimal(15),
        cache_read_mtok=Decimal("0.3"),
        cache_write_mtok=Decimal("3.75"),
        cache_write_1h_mtok=Decimal(6),
        source="genai-prices",
    )


def test_sonnet_4_5_hand_worked_from_anthropic_list_prices() -> None:
    counts = TokenCounts(
        input_tokens=1_234,
        output_tokens=567,
        cache_creation_input_tokens=2_000,
        cache_read_input_tokens=10_000,
    )

    cost = PriceBook().cost("claude-sonnet-4-5", counts, at=AT)

    assert cost == Cost(
        priced=True,
        prices=sonnet_4_5_prices(),
        input_nanousd=1_234 * 3_000,
        output_nanousd=567 * 15_000,
        cache_write_nanousd=2_000 * 3_750,
        cache_read_nanousd=10_000 * 300,
    )
    assert (cost.input_nanousd, cost.output_nanousd) == (3_702_000, 8_505_000)
    assert (cost.cache_write_nanousd, cost.cache_read_nanousd) == (7_500_000, 3_000_000)
    assert cost.input_side_nanousd == 14_202_000
    assert cost.total_nanousd == 22_707_000
    assert usd_text(cost.total_nanousd) == "0.022707"
    assert usd(cost.total_nanousd) == 0.022707


def test_a_single_cache_read_token_is_not_rounded_away() -> None:
    cost = PriceBook().cost("claude-sonnet-4-5", TokenCounts(0, 0, cache_read_input_tokens=1))

    assert cost.priced
    assert cost.total_nanousd == 300
    assert usd_text(cost.total_nanousd) == "0.0000003"


@pytest.mark.parametrize(
    ("model", "per_token_nanousd"),
    [
        # input, output, cache write (5 minutes), cache read: USD per MTok * 1000
        ("claude-haiku-4-5", (1_000, 5_000, 1_250, 100)),
        ("claude-opus-4-1", (15_000, 75_000, 18_750, 1_500)),
        ("claude-sonnet-4-5", (3_000, 15_000, 3_750, 300)),
    ],
)
def test_list_prices_per_token(model: str, per_token_nanousd: tuple[int, int, int, int]) -> None:
    counts = TokenCounts(
        input_tokens=100, output_tokens=20, cache_creation_input_tokens=3, cache_read_input_tokens=7
    )
    input_rate, output_rate, write_rate, read_rate = per_token_nanousd

    cost = PriceBook().cost(model, counts, at=AT)

    assert cost.input_nanousd == 100 * input_rate
    assert cost.output_nanousd == 20 * output_rate
    assert cost.cache_write_nanousd == 3 * write_rate
    assert cost.cache_read_nanousd == 7 * read_rate


def test_haiku_4_5_million_tokens_in_and_out_cost_six_dollars() -> None:
    cost = PriceBook().cost("claude-haiku-4-5", TokenCounts(1_000_000, 1_000_000), at=AT)

    assert cost.total_nanousd == 6 * 10**9
    assert usd_text(cost.total_nanousd) == "6"


def test_long_context_tier_applies_to_every_token_past_200k_input() -> None:
    book = PriceBook()
    at_threshold = TokenCounts(150_000, 1_000, cache_read_input_tokens=50_000)
    past_threshold = TokenCounts(150_000, 1_000, cache_read_input_tokens=50_001)

    base = book.cost("claude-sonnet-4-5", at_threshold, at=AT)
    long_context = book.cost("claude-sonnet-4-5", past_threshold, at=AT)

    assert base.total_nanousd == 150_000 * 3_000 + 50_000 * 300 + 1_000 * 15_000
    # Anthropic's >200K prices: $6 input, $22.50 output, $0.60 cache read, $7.50 cache write.
    assert long_context.prices == ModelPrices(
        input_mtok=Decimal(6),
        output_mtok=Decimal("22.5"),
        cache_read_mtok=Decimal("0.6"),
        cache_write_mtok=Decimal("7.5"),
        cache_write_1h_mtok=Decimal(12),
        source="genai-prices",
    )
    assert long_context.total_nanousd == 150_000 * 6_000 + 50_001 * 600 + 1_000 * 22_500


def test_prices_are_resolved_for_the_request_date() -> None:
    book = PriceBook()
    counts = TokenCounts(250_000, 1_000)

    before = book.cost("claude-sonnet-4-6", counts, at=BEFORE_FLAT_SONNET_4_6)
    after = book.cost("claude-sonnet-4-6", counts, at=AT)

    assert before.input_nanousd == 250_000 * 6_000
    assert after.input_nanousd == 250_000 * 3_000


def test_dated_model_id_is_priced_as_its_base_model() -> None:
    counts = TokenCounts(1_000, 1_000, 1_000, 1_000)
    book = PriceBook()

    assert book.cost("claude-sonnet-4-5-20250929", counts, at=AT) == book.cost(
        "claude-sonnet-4-5", counts, at=AT
    )


def test_unknown_model_is_unpriced_with_zero_cost() -> None:
    book = PriceBook()

    cost = book.cost("claude-imaginary-9", TokenCounts(10, 10, 10, 10))

    assert cost == Cost(False, None, 0, 0, 0, 0)
    assert cost == Cost.unpriced()
    assert cost.total_nanousd == 0
    assert book.prices_for("claude-imaginary-9") is None
    assert book.estimate_input_nanousd("claude-imaginary-9", 1_000) is None


def test_missing_cache_price_leaves_only_requests_that_used_the_cache_unpriced() -> None:
    # genai-prices has no cache prices for claude-2.
    book = PriceBook()

    assert book.cost("claude-2", TokenCounts(1_000, 100), at=AT).total_nanousd == (
        1_000 * 8_000 + 100 * 24_000
    )
    assert book.cost("claude-2", TokenCounts(1_000, 100, cache_read_input_tokens=1)) == (
        Cost.unpriced()
    )
    assert book.cost("claude-2", TokenCounts(1_000, 100, cache_creation_input_tokens=1)) == (
        Cost.unpriced()
    )


def configured(input_mtok: str, output_mtok: str) -> ModelPrices:
    return ModelPrices(
        input_mtok=Decimal(input_mtok),
        output_mtok=Decimal(output_mtok),
        cache_read_mtok=Decimal("0.1"),
        cache_write_mtok=None,
        source="config",
    )


def test_override_beats_genai_prices_also_for_dated_ids() -> None:
    override = configured("2", "10")
    book = PriceBook({"claude-sonnet-4-5": override})
    counts = TokenCounts(1_000, 100, cache_read_input_tokens=10)

    for model in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"):
        cost = book.cost(model, counts, at=AT)
        assert cost.prices is override
        assert cost.total_nanousd == 1_000 * 2_000 + 100 * 10_000 + 10 * 100
    # An override ignores the long-context tier: it states the price to charge, full stop.
    assert book.prices_for("claude-sonnet-4-5", 500_000) is override


def test_override_prices_a_model_genai_prices_does_not_know() -> None:
    book = PriceBook({"claude-imaginary-9": configured("1", "2")})

    assert book.cost("claude-imaginary-9-20270101", TokenCounts(1, 1)).total_nanousd == 3_000
    # No configured cache write price: a request that wrote the cache cannot be priced.
    assert not book.cost("claude-imaginary-9", TokenCounts(1, 1, 1)).priced


def test_the_input_estimate() -> None:
    book = PriceBook()

    assert book.estimate_input_nanousd("claude-sonnet-4-5", 1_000) == 3_000_000
    assert book.estimate_input_nanousd("claude-sonnet-4-5", 0) == 0
    # A prompt past the long-context threshold is estimated at the price it will be charged.
    assert book.estimate_input_nanousd("claude-sonnet-4-5", 200_001) == 200_001 * 6_000


def test_prices_with_more_than_three_decimals_round_half_up_per_component() -> None:
    book = PriceBook(
        {
            "batch-model": ModelPrices(
                input_mtok=Decimal("0.0625"),
                output_mtok=Decimal("0.0001"),
                cache_read_mtok=Decimal("0.0005"),
                cache_write_mtok=Decimal("0.0625"),
                source="config",
            )
        }
    )

    cost = book.cost("batch-model", TokenCounts(3, 4, 2, 1))

    assert cost.input_nanousd == 188  # 187.5
    assert cost.output_nanousd == 0  # 0.4
    assert cost.cache_write_nanousd == 125  # exact
    assert cost.cache_read_nanousd == 1  # 0.5


def test_sums_of_many_small_costs_are_exact() -> None:
    book = PriceBook()
    one_token = TokenCounts(0, 0, cache_read_input_tokens=1)

    total = sum(
        book.cost("claude-sonnet-4-5", one_token, at=AT).total_nanousd for _ in range(10_000)
    )

    assert total == 3_000_000
    assert usd_text(total) == "0.003"
    assert sum([usd(300)] * 10_000) != 0.003  # what adding float dollars would have shown


CROSS_CHECK_CASES = [
    ("claude-sonnet-4-5", TokenCounts(1_234, 567, 2_000, 10_000), AT),
    ("claude-sonnet-4-5", TokenCounts(180_000, 4_000, 15_000, 5_001), AT),
    ("claude-sonnet-4-5", TokenCounts(150_000, 1_000, 0, 50_000), AT),
    ("claude-sonnet-4-5-20250929", TokenCounts(150_000, 1_000, 0, 50_001), AT),
    ("claude-sonnet-4-6", TokenCounts(250_000, 3_333, 7, 11), BEFORE_FLAT_SONNET_4_6),
    ("claude-sonnet-4-6", TokenCounts(250_000, 3_333, 7, 11), AT),
    ("claude-opus-4-6", TokenCounts(300_000, 20_000, 1, 1), BEFORE_FLAT_SONNET_4_6),
    ("claude-haiku-4-5-20251001", TokenCounts(9_999, 1, 123, 456_789), AT),
    ("claude-opus-4-1", TokenCounts(1, 1, 1, 1), AT),
    ("claude-opus-4-5", TokenCounts(77_777, 8_888, 999, 0), AT),
    ("claude-3-5-haiku-20241022", TokenCounts(5_000, 600, 70, 8), AT),
    ("claude-3-haiku-20240307", TokenCounts(123_456, 7_890, 1_000, 2_000), AT),
    ("claude-2", TokenCounts(10_000, 500), AT),
]


@pytest.mark.parametrize(("model", "counts", "at"), CROSS_CHECK_CASES)
def test_matches_genai_prices_to_the_nano_dollar(
    model: str, counts: TokenCounts, at: datetime
) -> None:
    expected = calc_price(
        Usage(
            # genai-prices counts cache reads and writes inside input_tokens; Anthropic does not.
            input_tokens=counts.total_input,
            output_tokens=counts.output_tokens,
            cache_read_tokens=counts.cache_read_input_tokens,
            cache_write_tokens=counts.cache_creation_input_tokens,
        ),
        model_ref=model,
        provider_id="anthropic",
        genai_request_timestamp=at,
    )

    cost = PriceBook().cost(model, counts, at=at)

    assert cost.priced
    assert cost.total_nanousd == expected.total_price * 10**9
    assert cost.input_side_nanousd == expected.input_price * 10**9
    assert cost.output_nanousd == expected.output_price * 10**9


def test_genai_prices_is_looked_up_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    def spy(usage: Usage, model_ref: str, *, provider_id: str) -> PriceCalculation:
        looked_up.append(model_ref)
        return calc_price(usage, model_ref, provider_id=provider_id)

    monkeypatch.setattr(pricing, "calc_price", spy)
    book = PriceBook()

    for _ in range(3):
        book.cost("claude-sonnet-4-5", TokenCounts(1, 1))
        book.cost("claude-imaginary-9", TokenCounts(1, 1))

    assert looked_up == ["claude-sonnet-4-5", "claude-imaginary-9"]


def test_lookup_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    def spy(usage: Usage, model_ref: str, *, provider_id: str) -> PriceCalculation:
        looked_up.append(model_ref)
        return calc_price(usage, model_ref, provider_id=provider_id)

    monkeypatch.setattr(pricing, "calc_price", spy)
    monkeypatch.setattr(pricing, "_MAX_CACHED_MODELS", 3)
    book = PriceBook()
    for n in range(10):
        book.prices_for(f"claude-imaginary-{n}")
    looked_up.clear()

    # The three latest ids are still cached; the first ones were let go and are looked up.
    for n in (9, 8, 7, 0):
        book.prices_for(f"claude-imaginary-{n}")

    assert looked_up == ["claude-imaginary-0"]


def test_only_the_bundled_price_snapshot_is_used() -> None:
    PriceBook().cost("claude-sonnet-4-5", TokenCounts(1, 1))

    # The network is refused by the autouse fixture; no updater has replaced the snapshot.
    assert genai_snapshot.get_snapshot().from_auto_update is False
    assert "genai_prices:update" not in {thread.name for thread in threading.enumerate()}


@pytest.mark.parametrize("bad", [3.0, -1, Decimal(-1), Decimal("NaN"), "3"])
def test_prices_must_be_non_negative_decimals(bad: object) -> None:
    with pytest.raises(ValueError, match=r"input_mtok must be a non-negative Decimal"):
        ModelPrices(bad, Decimal(1), None, None, source="config")  # type: ignore[arg-type]


def test_output_price_cannot_be_missing() -> None:
    with pytest.raises(ValueError, match=r"output_mtok must be a non-negative Decimal"):
        ModelPrices(Decimal(1), None, None, None, source="config")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 1.0, True])
def test_token_counts_must_be_non_negative_ints(bad: object) -> None:
    with pytest.raises(ValueError, match=r"output_tokens must be a non-negative int"):
        TokenCounts(1, bad)  # type: ignore[arg-type]


def test_token_count_totals() -> None:
    counts = TokenCounts(1, 20, cache_creation_input_tokens=300, cache_read_input_tokens=4_000)

    assert counts.total_input == 4_301
    assert counts.total == 4_321


@pytest.mark.parametrize(
    ("nanousd", "text"),
    [
        (0, "0"),
        (1, "0.000000001"),
        (300, "0.0000003"),
        (22_707_000, "0.022707"),
        (10**9, "1"),
        (1_500_000_000, "1.5"),
        (123 * 10**9 + 45, "123.000000045"),
        (-300, "-0.0000003"),
    ],
)
def test_usd_text_is_exact(nanousd: int, text: str) -> None:
    assert usd_text(nanousd) == text
    assert Decimal(text) * 10**9 == nanousd


def test_usd_is_the_nearest_float() -> None:
    assert usd(300) == 3e-7
    assert usd(22_707_000) == 0.022707
    assert usd(10**9 + 1) == 1.000000001
