"""A reply cut off before Anthropic's final output count is billed at least what was streamed.

message_start reports ``output_tokens: 1`` as a placeholder; a cancel, a client lost or an
upstream drop ends the stream before message_delta's real figure. The ledger then bills the
cl100k count of the stored partial reply, flagged estimated, on the wire and in usage.query.
"""

from typing import Any

from agentspace_gateway.home import Home
from agentspace_gateway.tokens import TokenEstimator

from chat_helpers import closed_usage_rows, deltas, eventually, query, until_end
from fake_anthropic import Scenario
from wsclient import exchange, receive, request

CHUNKS = ["The quick brown fox ", "jumps over the lazy dog, ", "then naps in the sun. "] * 4


def cl100k(text: str) -> int:
    return TokenEstimator().count(text)


def stored_reply(home: Home) -> Any:
    [reply] = query(home, "SELECT * FROM messages WHERE role = 'assistant'")
    return reply


async def three_deltas_in(ws: Any) -> None:
    """Send chat.send and read until the first three chunks have arrived (the gateway may
    join deltas into fewer frames)."""
    await request(ws, {"type": "chat.send", "id": "s", "content": "tell me"})
    frames: list[dict[str, Any]] = []
    while deltas(frames) != "".join(CHUNKS[:3]):
        frames.append(await receive(ws))


async def estimated_count(ws: Any) -> int:
    report = await exchange(ws, {"type": "usage.query", "id": "u"})
    return sum(model["estimatedCount"] for model in report["perModel"].values())


def assert_estimated_bill(home: Home, wire_usage: dict[str, Any] | None) -> None:
    reply = stored_reply(home)
    assert reply["complete"] == 0
    streamed = cl100k(reply["content"])
    assert streamed > 1
    [row] = closed_usage_rows(home)
    assert row["output_tokens"] >= streamed
    assert row["output_estimated"] == 1
    assert reply["token_count"] == row["output_tokens"]
    if wire_usage is not None:
        assert wire_usage["estimated"] is True
        assert wire_usage["outputTokens"] == row["output_tokens"]


async def test_a_cancel_three_deltas_in_bills_the_streamed_estimate(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=CHUNKS, stall_after=3, input_tokens=40))
    async with chat_client.ws_connect("/gateway") as ws:
        await three_deltas_in(ws)
        await request(ws, {"type": "chat.cancel", "id": "c", "requestId": "s"})
        end = (await until_end(ws, "s"))[-1]
        assert end["type"] == "chat.stream.end"
        assert_estimated_bill(home, end["usage"])
        assert end["cost"]["outputCostNanos"] > 0
        assert await estimated_count(ws) == 1


async def test_an_upstream_drop_bills_the_estimate_and_the_error_carries_it(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=CHUNKS, drop_after=3, input_tokens=40))
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "tell me"})
        error = (await until_end(ws, "s"))[-1]
        assert error["type"] == "error"
        assert_estimated_bill(home, error["usage"])
        [row] = closed_usage_rows(home)
        assert error["usage"]["inputTokens"] == 40
        assert error["cost"]["totalCostNanos"] == row["cost_nanousd"]
        assert await estimated_count(ws) == 1


async def test_a_dropped_client_is_billed_the_estimate(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=CHUNKS, stall_after=3, input_tokens=40))
    async with chat_client.ws_connect("/gateway") as ws:
        await three_deltas_in(ws)
    await eventually(lambda: closed_usage_rows(home))
    assert_estimated_bill(home, None)
    async with chat_client.ws_connect("/gateway") as ws:
        assert await estimated_count(ws) == 1


async def test_a_complete_reply_is_billed_as_reported(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    # Anthropic's final figure wins for a finished reply, even below the estimate.
    fake.enqueue(Scenario(text_chunks=CHUNKS, output_tokens=5, input_tokens=40))
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "tell me"})
        end = (await until_end(ws, "s"))[-1]
    assert end["usage"]["outputTokens"] == 5
    assert "estimated" not in end["usage"]  # left out when false
    [row] = closed_usage_rows(home)
    assert (row["output_tokens"], row["output_estimated"]) == (5, 0)
