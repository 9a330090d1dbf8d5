"""A billed request through its public API: opened on the first usage report, the latest
report winning, priced once at settlement and written whole with its reply."""

import asyncio
from decimal import Decimal

import pytest

from agentspace_gateway.metering import (
    Failed,
    Metering,
    Stopped,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import ModelPrices, PriceBook, TokenCounts
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.storage import (
    Database,
    NewMessage,
    ReplyRecorder,
    SessionRepository,
    UsageLedger,
)
from agentspace_gateway.tokens import TokenEstimator

MODEL = "claude-test-1"
# USD per MTok: one token costs price * 1000 nano-dollars.
PRICES = ModelPrices(
    input_mtok=Decimal(3),
    output_mtok=Decimal(15),
    cache_read_mtok=Decimal("0.3"),
    cache_write_mtok=Decimal("3.75"),
    source="config",
)


class CountingPriceBook(PriceBook):
    def __init__(self) -> None:
        super().__init__({MODEL: PRICES})
        self.priced: list[TokenCounts] = []

    def cost(self, model, counts, *, at=None):  # type: ignore[no-untyped-def]
        self.priced.append(counts)
        return super().cost(model, counts, at=at)


@pytest.fixture
async def session_id(db: Database) -> str:
    return (await SessionRepository(db).create(agent_id="main", model=MODEL)).id


@pytest.fixture
def price_book() -> CountingPriceBook:
    return CountingPriceBook()


@pytest.fixture
def metering(db: Database, price_book: CountingPriceBook) -> Metering:
    return Metering(UsageLedger(db), price_book, ReplyRecorder(db), TokenEstimator())


def begin(metering: Metering, session_id: str, request_id: str = "x1"):  # type: ignore[no-untyped-def]
    return metering.begin(
        session_id=session_id, model=MODEL, request_id=request_id, estimated_input_tokens=990
    )


async def usage_rows(db: Database) -> list[dict[str, object]]:
    rows = await db.fetchall(
        "SELECT id, input_tokens, output_tokens, cost_nanousd, stop_reason, request_id, "
        "estimated_input_tokens, output_estimated FROM usage_records ORDER BY id"
    )
    return [dict(row) for row in rows]


async def eventually_rows(db: Database) -> list[dict[str, object]]:
    for _ in range(250):
        rows = await usage_rows(db)
        if rows:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError("no usage row was written")


async def test_the_first_report_opens_the_row_with_its_cost(
    db: Database, metering: Metering, session_id: str
) -> None:
    billed = begin(metering, session_id)
    billed.feed(UsageReported(TokenCounts(1000, 1)))

    [row] = await eventually_rows(db)
    assert row["stop_reason"] == "in_progress"
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 1)
    assert row["cost_nanousd"] == 1000 * 3000 + 1 * 15000
    assert (row["request_id"], row["estimated_input_tokens"]) == ("x1", 990)


async def test_the_latest_report_wins_and_the_opened_row_is_updated_not_doubled(
    db: Database, metering: Metering, session_id: str
) -> None:
    billed = begin(metering, session_id)
    billed.feed(UsageReported(TokenCounts(1000, 1, cache_read_input_tokens=200)))
    billed.feed(TextStreamed("Hello"))
    billed.feed(UsageReported(TokenCounts(1000, 50, cache_read_input_tokens=200)))
    billed.feed(Stopped("end_turn"))
    assert billed.counts == TokenCounts(1000, 50, cache_read_input_tokens=200)
    assert (billed.text, billed.stop_reason, billed.error) == ("Hello", "end_turn", None)

    settlement = await billed.settle(stop_reason="end_turn")

    expected = 1000 * 3000 + 50 * 15000 + 200 * 300
    assert settlement.cost.total_nanousd == expected
    [row] = await usage_rows(db)
    assert settlement.usage is not None
    assert settlement.usage.id == row["id"]
    assert (row["output_tokens"], row["cost_nanousd"], row["stop_reason"]) == (
        50,
        expected,
        "end_turn",
    )


async def test_settle_prices_once_and_writes_the_reply_with_its_usage(
    db: Database, metering: Metering, price_book: CountingPriceBook, session_id: str
) -> None:
    billed = begin(metering, session_id)
    billed.feed(UsageReported(TokenCounts(10, 0)))
    billed.feed(TextStreamed("an answer"))
    billed.feed(UsageReported(TokenCounts(10, 3)))
    await eventually_rows(db)  # opened (and priced for that)
    price_book.priced.clear()

    reply = NewMessage(session_id, "assistant", billed.text, token_count=3, request_id="x1")
    settlement = await billed.settle(stop_reason="end_turn", reply=reply)
    again = await billed.settle(stop_reason="ignored")

    assert price_book.priced == [TokenCounts(10, 3)]
    assert again == settlement
    messages = await db.fetchall(
        "SELECT content, request_id, token_estimate FROM messages WHERE role = 'assistant'"
    )
    assert [(m["content"], m["request_id"]) for m in messages] == [("an answer", "x1")]
    assert messages[0]["token_estimate"] > 0  # estimated at settlement
    [row] = await usage_rows(db)
    assert (row["request_id"], row["output_tokens"], row["stop_reason"]) == ("x1", 3, "end_turn")


async def test_a_settle_cancelled_twice_still_lands_whole(
    db: Database, metering: Metering, session_id: str
) -> None:
    billed = begin(metering, session_id)
    billed.feed(UsageReported(TokenCounts(7, 2)))
    billed.feed(TextStreamed("partial"))
    reply = NewMessage(
        session_id, "assistant", "partial", token_estimate=1, complete=False, request_id="x1"
    )
    settling = asyncio.ensure_future(billed.settle(stop_reason="cancelled", reply=reply))
    await asyncio.sleep(0)
    settling.cancel()
    await asyncio.sleep(0)
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling

    [row] = await usage_rows(db)
    assert (row["input_tokens"], row["output_tokens"], row["stop_reason"]) == (7, 2, "cancelled")
    [message] = await db.fetchall("SELECT content, complete FROM messages")
    assert (message["content"], message["complete"]) == ("partial", 0)


async def test_a_request_that_failed_before_any_report_bills_nothing(
    db: Database, metering: Metering, session_id: str
) -> None:
    billed = begin(metering, session_id)
    failure = GatewayError(ErrorCode.LLM_ERROR, "upstream refused")
    billed.feed(Failed(failure))

    settlement = await billed.settle(stop_reason="error")

    assert billed.error is failure
    assert (settlement.usage, settlement.counts) == (None, TokenCounts(0, 0))
    assert await usage_rows(db) == []


async def test_text_without_any_report_is_billed_on_the_estimates(
    db: Database, metering: Metering, session_id: str
) -> None:
    # An upstream that reports usage only at its end (OpenAI), cut before it.
    billed = metering.begin(
        session_id=session_id, model="claude-sonnet-4-5", request_id="r", estimated_input_tokens=30
    )
    billed.feed(TextStreamed("The quick brown fox jumps over the lazy dog."))
    billed.feed(Failed(GatewayError(ErrorCode.LLM_ERROR, "connection lost")))

    settlement = await billed.settle(stop_reason="error")

    assert settlement.output_estimated
    assert settlement.counts.input_tokens == 30
    assert settlement.counts.output_tokens == metering.estimator.count(billed.text)
    [row] = await usage_rows(db)
    assert (row["input_tokens"], row["output_tokens"], row["output_estimated"]) == (
        30,
        settlement.counts.output_tokens,
        1,
    )
