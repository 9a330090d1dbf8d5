"""The upstream fault matrix, completed: what test_chat_failures leaves out.

That module covers 429, 529, 500, 413-like and 401 before the stream, and an error event, a
reset connection, a stall and malformed SSE mid-stream. Here: unknown event types (the
stream completes), a 429 the gateway waits out (the stream completes), a stall before any byte,
and, for every mid-stream fault, that the ledger holds exactly the tokens Anthropic reported.
"""

import time

import pytest

from agentspace_gateway.home import Home

from chat_helpers import deltas, kinds, messages, send_chat, usage_rows
from conftest import TEST_API_KEY, chat_config
from fake_anthropic import Scenario, count_input_tokens
from wsclient import exchange

CHUNKS = ["par", "tial", "x"]


@pytest.fixture
async def patient_client(make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The gateway with a short upstream timeout and one retry.

    The timeout bounds the attempts and the waits together (llm/retries.py): 2 s leaves the
    0.3 s wait room under load."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    _, base_url = fake_anthropic
    return await make_client(chat_config(base_url, timeout_seconds=2.0, max_retries=1))


@pytest.mark.parametrize("after", [0, 1, 3], ids=["before-text", "mid-stream", "after-text"])
async def test_unknown_event_types_are_skipped_and_the_stream_completes(
    chat_client, fake_anthropic, home: Home, after: int
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=CHUNKS, unknown_event_after=after, input_tokens=13))
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "u", "go")
        again = await send_chat(ws, "v", "again", sessionId=frames[0]["sessionId"])

    assert kinds(frames)[-1] == "chat.stream.end"
    assert deltas(frames) == "partialx"
    end = frames[-1]
    assert (end["stopReason"], end["usage"]["inputTokens"]) == ("end_turn", 13)
    assert end["usage"]["outputTokens"] == len(CHUNKS)
    assert messages(home)[:2] == [("user", "go", 1), ("assistant", "partialx", 1)]
    row = usage_rows(home)[0]
    assert (row["input_tokens"], row["output_tokens"], row["stop_reason"]) == (13, 3, "end_turn")
    assert again[-1]["type"] == "chat.stream.end"


async def test_a_429_with_retry_after_is_waited_out_by_the_gateway(
    patient_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario.rate_limited(retry_after="0.3"), Scenario(text_chunks=CHUNKS))
    began = time.monotonic()
    async with patient_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    first, second = fake.message_requests
    assert second.received_at - first.received_at >= 0.3  # it honoured retry-after
    assert time.monotonic() - began >= 0.3
    assert kinds(frames)[-1] == "chat.stream.end"
    assert deltas(frames) == "partialx"
    # Only the request that streamed is billed: a 429 reports no usage.
    [row] = usage_rows(home)
    assert row["stop_reason"] == "end_turn"
    assert messages(home) == [("user", "hello", 1), ("assistant", "partialx", 1)]


async def test_a_stall_before_any_byte_is_upstream_timeout(
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await make_client(chat_config(base_url, timeout_seconds=0.5))
    fake.enqueue(Scenario(delay_before_stream=30.0))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t", "hello")
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
        again = await send_chat(ws, "n", "again", sessionId=frames[0]["sessionId"])

    error = frames[-1]
    assert (error["code"], error["requestId"], error["retryable"]) == (
        "UPSTREAM_TIMEOUT",
        "t",
        True,
    )
    assert messages(home)[0] == ("user", "hello", 1)
    # Nothing was reported, so nothing is billed; the next chat.send works.
    assert [row["stop_reason"] for row in usage_rows(home)] == ["end_turn"]
    assert again[-1]["type"] == "chat.stream.end"


@pytest.mark.parametrize(
    ("knobs", "code"),
    [
        ({"error_event_after": 2}, "UPSTREAM_OVERLOADED"),
        ({"drop_after": 2}, "LLM_ERROR"),
        ({"stall_after": 2}, "UPSTREAM_TIMEOUT"),
        ({"malformed_after": 2}, "LLM_ERROR"),
    ],
    ids=["error-event", "reset", "stall", "malformed"],
)
async def test_every_token_reported_before_a_mid_stream_fault_is_billed(
    make_client,
    fake_anthropic,
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    knobs: dict[str, int],
    code: str,
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await make_client(chat_config(base_url, timeout_seconds=0.5))
    fake.enqueue(
        Scenario(
            text_chunks=CHUNKS,
            cache_creation_input_tokens=40,
            cache_read_input_tokens=500,
            **knobs,  # type: ignore[arg-type]
        )
    )
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "m", "go")

    assert frames[-1]["code"] == code
    # message_start reported these (output 1, as the real API does); nothing reported later.
    reported = count_input_tokens(fake.message_requests[0].json)
    [row] = usage_rows(home)
    assert (
        row["input_tokens"],
        row["output_tokens"],
        row["cache_creation_input_tokens"],
        row["cache_read_input_tokens"],
    ) == (reported, 1, 40, 500)
    assert row["cost_nanousd"] > 0
    assert row["cache_write_cost_nanousd"] > 0
    assert row["cache_read_cost_nanousd"] > 0
    assert messages(home) == [("user", "go", 1), ("assistant", "partial", 0)]
