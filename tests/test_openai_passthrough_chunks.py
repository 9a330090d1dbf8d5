"""The OpenAI door reads the chunks one upstream read completed together, into a real billed
request: the same text, stop and usage as chunk by chunk, whatever else shares the read."""

import json
from decimal import Decimal
from typing import Any

import pytest

from agentspace_gateway.metering import Metering
from agentspace_gateway.openai_api.passthrough import read_chunks
from agentspace_gateway.pricing import ModelPrices, PriceBook, TokenCounts
from agentspace_gateway.storage import Database, ReplyRecorder, SessionRepository, UsageLedger
from agentspace_gateway.tokens import TokenEstimator

MODEL = "gpt-test"
PRICES = ModelPrices(
    input_mtok=Decimal(2),
    output_mtok=Decimal(8),
    cache_read_mtok=Decimal("0.5"),
    cache_write_mtok=Decimal(2),
    source="config",
)


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": {} if content is None else {"content": content}}
    body = {"object": "chat.completion.chunk", "choices": [{**choice, "finish_reason": finish}]}
    return json.dumps({**body, **extra}).encode()


USAGE = json.dumps(
    {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
).encode()


@pytest.mark.parametrize(
    "odd",
    [
        pytest.param(None, id="all JSON objects"),
        pytest.param(b"not json", id="one not JSON"),
        pytest.param(b'{"a": 1}, {"b": 2}', id="one that is two objects"),
        pytest.param(b"[1, 2]", id="one a JSON array"),
    ],
)
async def test_a_read_of_many_chunks_bills_as_chunk_by_chunk(
    db: Database, odd: bytes | None
) -> None:
    session = await SessionRepository(db).create(agent_id="main", model=MODEL)
    metering = Metering(
        UsageLedger(db), PriceBook({MODEL: PRICES}), ReplyRecorder(db), TokenEstimator()
    )
    billed = metering.begin(
        session_id=session.id, model=MODEL, request_id="r1", estimated_input_tokens=5
    )
    datas = [chunk("Hel"), chunk("lo", usage=None), chunk(None, "length"), USAGE]
    if odd is not None:
        datas.insert(2, odd)
    usage_only = read_chunks(billed, datas)
    assert usage_only == [False] * (len(datas) - 1) + [True]
    assert billed.text == "Hello"
    assert billed.stop_reason == "max_tokens"
    assert billed.counts == TokenCounts(input_tokens=7, output_tokens=3)
    settlement = await billed.settle(stop_reason=billed.stop_reason or "")
    assert not settlement.output_estimated
    assert settlement.cost.total_nanousd == 7 * 2_000 + 3 * 8_000
