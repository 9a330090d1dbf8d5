"""Which ids are priced, the price for unknown models, one-hour write rates, and usage
reports merged as the stream goes."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from anthropic.types import MessageDeltaUsage, Usage

from agentspace_gateway.config import Config, PriceOverride
from agentspace_gateway.config_loading import load_config
from agentspace_gateway.home import Home
from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.pricing import (
    UNKNOWN_MODEL,
    ModelPrices,
    PriceBook,
    TokenCounts,
    one_hour_write_rate,
)
from agentspace_gateway.providers.prices import price_overrides

from chat_helpers import query, send_chat
from conftest import TEST_API_KEY
from fake_anthropic import Scenario

# Invented ids that genai-prices' prefixes would match to a real model.
INVENTED = ["claude-opus-4-60", "claude-sonnet-4-5-foo", "claude-haiku-4-5x", "claude-opus-4-1-2"]
# Real ids Anthropic has served, dated snapshots and aliases, with the model they price as.
REAL = {
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-20250514": "claude-opus-4-0",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku-latest",
    "claude-3-7-sonnet-20250219": "claude-3-7-sonnet-latest",
    "claude-sonnet-4-5@20250929": "claude-sonnet-4-5",
    "claude-sonnet-5-5": "claude-sonnet-5-5",
    "claude-opus-5-5": "claude-opus-5-5",
}


@pytest.mark.parametrize("model", INVENTED)
def test_an_invented_id_is_unpriced(model: str) -> None:
    book = PriceBook()

    cost = book.cost(model, TokenCounts(1_000, 1_000))

    assert not cost.priced
    assert cost.total_nanousd == 0
    assert book.prices_for(model) is None


@pytest.mark.parametrize(("model", "listed_as"), REAL.items())
def test_a_real_dated_id_is_priced_as_its_model(model: str, listed_as: str) -> None:
    book = PriceBook()
    counts = TokenCounts(1_000, 100, 10, 1, cache_creation_1h_input_tokens=4)

    cost = book.cost(model, counts)

    assert cost.priced
    assert cost == book.cost(listed_as, counts)


def fallback() -> ModelPrices:
    return ModelPrices(
        input_mtok=Decimal(15),
        output_mtok=Decimal(75),
        cache_read_mtok=Decimal("1.5"),
        cache_write_mtok=Decimal("18.75"),
        source="config",
    )


def test_the_unknown_model_price_applies_to_unknown_ids_only_and_says_so() -> None:
    book = PriceBook({UNKNOWN_MODEL: fallback()})

    invented = book.cost("claude-opus-4-60", TokenCounts(1_000, 100))
    known = book.cost("claude-sonnet-4-5", TokenCounts(1_000, 100))

    assert invented.priced
    assert invented.prices is not None
    assert invented.prices.source == UNKNOWN_MODEL
    # 1,000 * 15,000 + 100 * 75,000 nano-dollars.
    assert invented.total_nanousd == 22_500_000
    assert known.prices is not None
    assert known.prices.source == "genai-prices"
    assert known.total_nanousd == 1_000 * 3_000 + 100 * 15_000


def test_the_configured_unknown_model_price_reaches_the_price_book() -> None:
    config = Config(
        pricing={"unknown_model": PriceOverride(input=15, output=75, cache_write=18.75)}
    )

    book = PriceBook(price_overrides(config))
    prices = book.prices_for("some-local-model")

    assert prices is not None
    assert prices.source == UNKNOWN_MODEL
    # Left out of the configuration: 2x input, since cache_write is Anthropic's 1.25x.
    assert prices.cache_write_1h_mtok == Decimal(30)
    assert book.prices_for("claude-haiku-4-5") is not None
    assert book.cost("claude-haiku-4-5", TokenCounts(1, 0)).total_nanousd == 1_000


def test_a_configured_one_hour_price_is_used_as_given() -> None:
    config = Config(
        pricing={"m": PriceOverride(input=1, output=2, cache_write=5, cache_write_1h=7)}
    )

    prices = PriceBook(price_overrides(config)).prices_for("m")

    assert prices is not None
    assert (prices.cache_write_1h_mtok, prices.source) == (Decimal(7), "config")


@pytest.mark.parametrize(
    ("input_mtok", "write_5m", "listed", "expected"),
    [
        (Decimal(3), Decimal("3.75"), Decimal(6), Decimal(6)),  # listed: used as is
        (Decimal(3), Decimal("3.75"), None, Decimal(6)),  # 1.25x rule holds: 2x input
        (Decimal(6), Decimal("7.5"), None, Decimal(12)),  # a long-context tier, likewise
        (Decimal(3), Decimal(4), None, None),  # not the published multiplier: unknown
        (Decimal(3), None, None, None),  # no cache prices at all
    ],
)
def test_the_one_hour_rate_is_derived_only_where_it_is_certain(
    input_mtok: Decimal, write_5m: Decimal | None, listed: Decimal | None, expected: Decimal | None
) -> None:
    assert one_hour_write_rate(input_mtok, write_5m, listed) == expected


def test_one_hour_writes_without_a_one_hour_price_are_unpriced() -> None:
    prices = five_minute_price_off_the_rule()
    book = PriceBook({"m": prices})

    assert book.cost("m", TokenCounts(1, 1, 10)).priced
    assert not book.cost("m", TokenCounts(1, 1, 10, cache_creation_1h_input_tokens=1)).priced


def five_minute_price_off_the_rule() -> ModelPrices:
    return ModelPrices(
        input_mtok=Decimal(3),
        output_mtok=Decimal(15),
        cache_read_mtok=Decimal("0.3"),
        cache_write_mtok=Decimal(4),
        cache_write_1h_mtok=None,
        source="config",
    )


def test_one_hour_writes_cannot_exceed_all_writes() -> None:
    with pytest.raises(ValueError, match="part of cache_creation_input_tokens"):
        TokenCounts(1, 1, cache_creation_input_tokens=5, cache_creation_1h_input_tokens=6)


def test_merge_reads_the_breakdown_from_message_start_and_keeps_it_through_the_delta() -> None:
    start = Usage.model_validate(
        {
            "input_tokens": 100,
            "output_tokens": 1,
            "cache_creation_input_tokens": 11_000,
            "cache_read_input_tokens": 20_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1_000,
                "ephemeral_1h_input_tokens": 10_000,
            },
        }
    )
    # message_delta carries the flat figures only, as the real API sends them.
    delta = MessageDeltaUsage.model_validate(
        {
            "input_tokens": 100,
            "output_tokens": 200,
            "cache_creation_input_tokens": 11_000,
            "cache_read_input_tokens": 20_000,
        }
    )

    started = merge_usage(TokenCounts(0, 0), start)
    ended = merge_usage(started, delta)

    assert started == TokenCounts(100, 1, 11_000, 20_000, cache_creation_1h_input_tokens=10_000)
    assert ended == TokenCounts(100, 200, 11_000, 20_000, cache_creation_1h_input_tokens=10_000)


def test_merge_keeps_fields_a_report_leaves_out_or_gets_wrong() -> None:
    previous = TokenCounts(100, 5, 50, 7, cache_creation_1h_input_tokens=20)

    assert merge_usage(previous, None) == previous
    assert merge_usage(previous, {"output_tokens": 9}) == TokenCounts(
        100, 9, 50, 7, cache_creation_1h_input_tokens=20
    )
    bad = {"input_tokens": -1, "output_tokens": True, "cache_read_input_tokens": 2.5}
    assert merge_usage(previous, bad) == previous


def test_merge_never_bills_fewer_writes_than_the_breakdown_reports() -> None:
    report = {
        "cache_creation_input_tokens": 10,
        "cache_creation": {"ephemeral_5m_input_tokens": 8, "ephemeral_1h_input_tokens": 7},
    }

    merged = merge_usage(TokenCounts(0, 0), report)

    assert (merged.cache_creation_input_tokens, merged.cache_creation_1h_input_tokens) == (15, 7)


async def test_an_invented_id_through_the_gateway_is_flagged_or_priced_as_unknown(
    make_client, fake_anthropic, home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    fake, base_url = fake_anthropic
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[anthropic]\nbase_url = "{base_url}"\nmax_retries = 0\n\n'
        "[pricing.unknown_model]\ninput = 15.0\noutput = 75.0\n",
        encoding="utf-8",
    )
    client = await make_client(load_config(config_file, environ={}))
    fake.enqueue(Scenario(input_tokens=1_000, output_tokens=100))
    async with client.ws_connect("/gateway") as ws:
        end = (await send_chat(ws, "u", "hi", model="claude-opus-4-60"))[-1]

    # 1,000 * 15,000 + 100 * 75,000 nano-dollars, at the configured unknown-model price.
    assert end["cost"]["totalCostNanos"] == 22_500_000
    assert (end["cost"]["priced"], end["cost"]["priceSource"]) == (True, "unknown_model")
    [row] = query(home, "SELECT cost_nanousd, priced, prices FROM usage_records")
    assert (row["cost_nanousd"], row["priced"]) == (22_500_000, 1)
    assert json.loads(row["prices"])["source"] == "unknown_model"


async def test_an_invented_id_without_an_unknown_model_price_is_unpriced(
    chat_client, fake_anthropic, home: Home
) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        end = (await send_chat(ws, "u", "hi", model="claude-sonnet-4-5-foo"))[-1]

    assert end["cost"]["priced"] is False
    assert end["cost"]["totalCostNanos"] == 0
    assert "priceSource" not in end["cost"]
    [row] = query(home, "SELECT priced, prices FROM usage_records")
    assert (row["priced"], row["prices"]) == (0, None)
