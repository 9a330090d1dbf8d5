"""Where gateways lose data: cancels, clients leaving, and every upstream failure.

In every case the user message stays, the partial reply is kept marked incomplete, every
token Anthropic reported is in the ledger, and the connection serves the next request.
"""

import pytest

from agentspace_gateway.home import Home

from chat_helpers import (
    closed_usage_rows,
    deltas,
    eventually,
    kinds,
    messages,
    send_chat,
    stream_started,
    until_end,
    usage_rows,
)
from conftest import chat_config
from fake_anthropic import Scenario
from wsclient import exchange, receive, request


async def test_chat_cancel_stops_the_stream_promptly(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(endless=True, text_chunks=["tick "], delay_between_chunks=0.01, input_tokens=42)
    )
    async with chat_client.ws_connect("/gateway") as ws:
        before = await stream_started(ws, "s", "count forever")
        await request(ws, {"type": "chat.cancel", "id": "c", "requestId": "s"})
        after = await until_end(ws, "s")
        closed_within = await fake.wait_for_disconnect(timeout=1.0)
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"

    end = after[-1]
    assert end["type"] == "chat.stream.end"
    assert end["stopReason"] == "cancelled"
    assert end["usage"]["inputTokens"] == 42
    assert end["cost"]["totalCost"] > 0
    assert closed_within < 1.0
    streamed = deltas(before + after)
    assert messages(home) == [("user", "count forever", 1), ("assistant", streamed, 0)]
    [row] = usage_rows(home)
    assert (row["input_tokens"], row["stop_reason"]) == (42, "cancelled")


async def test_cancel_without_a_stream_is_no_active_stream(chat_client) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "chat.cancel", "id": "c"})
    assert (reply["code"], reply["requestId"]) == ("NO_ACTIVE_STREAM", "c")


async def test_cancel_naming_another_request_leaves_the_stream(chat_client, fake_anthropic) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["a"] * 10, delay_between_chunks=0.02))
    async with chat_client.ws_connect("/gateway") as ws:
        await stream_started(ws, "s", "go", at_least=1)
        refused = await exchange(ws, {"type": "chat.cancel", "id": "c", "requestId": "other"})
        while refused.get("requestId") != "c":
            refused = await receive(ws)
        frames = await until_end(ws, "s")
    assert refused["code"] == "NO_ACTIVE_STREAM"
    assert frames[-1]["stopReason"] == "end_turn"


async def test_a_client_leaving_mid_stream_closes_upstream_and_keeps_the_text(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(endless=True, text_chunks=["word "], delay_between_chunks=0.01, input_tokens=7)
    )
    ws = await chat_client.ws_connect("/gateway")
    frames = await stream_started(ws, "s", "keep talking", at_least=3)
    await ws.close()

    closed_within = await fake.wait_for_disconnect(timeout=1.0)
    assert closed_within < 1.0
    await eventually(lambda: closed_usage_rows(home))
    stored = messages(home)
    assert stored[0] == ("user", "keep talking", 1)
    role, text, complete = stored[1]
    assert (role, complete) == ("assistant", 0)
    assert text.startswith(deltas(frames))
    [row] = usage_rows(home)
    assert (row["input_tokens"], row["stop_reason"]) == (7, "cancelled")


@pytest.mark.parametrize(
    ("scenario", "code", "retryable", "retry_after_ms"),
    [
        (Scenario.rate_limited(retry_after="3"), "RATE_LIMITED", True, 3000),
        (Scenario.overloaded(retry_after="1"), "UPSTREAM_OVERLOADED", True, 1000),
        (Scenario.server_error(), "LLM_ERROR", True, None),
        (Scenario.prompt_too_long(), "CONTEXT_TOO_LONG", False, None),
        (Scenario.unauthorized(), "AUTHENTICATION_FAILED", False, None),
    ],
    ids=["429", "529", "500", "too-long", "401"],
)
async def test_errors_before_the_stream(
    chat_client,
    fake_anthropic,
    home: Home,
    scenario: Scenario,
    code: str,
    retryable: bool,
    retry_after_ms: int | None,
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(scenario)
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "e", "hello")
        next_one = await send_chat(ws, "ok", "and now?", sessionId=frames[0]["sessionId"])

    error = frames[-1]
    assert (error["type"], error["code"], error["requestId"]) == ("error", code, "e")
    assert error["retryable"] is retryable
    assert error.get("retryAfterMs") == retry_after_ms
    assert error["message"]
    assert next_one[-1]["type"] == "chat.stream.end"  # the connection is still usable
    assert messages(home)[0] == ("user", "hello", 1)
    assert [row["stop_reason"] for row in usage_rows(home)] == ["end_turn"]  # nothing billed


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        (
            Scenario(text_chunks=["par", "tial", "x"], error_event_after=2, input_tokens=11),
            "UPSTREAM_OVERLOADED",
        ),
        (Scenario(text_chunks=["par", "tial", "x"], drop_after=2, input_tokens=11), "LLM_ERROR"),
        (
            Scenario(text_chunks=["par", "tial", "x"], stall_after=2, input_tokens=11),
            "UPSTREAM_TIMEOUT",
        ),
        (
            Scenario(text_chunks=["par", "tial", "x"], malformed_after=2, input_tokens=11),
            "LLM_ERROR",
        ),
    ],
    ids=["error-event", "dropped", "stall", "malformed"],
)
async def test_failures_mid_stream_keep_the_partial_reply_and_its_tokens(
    make_client,
    fake_anthropic,
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Scenario,
    code: str,
) -> None:
    from conftest import TEST_API_KEY

    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await make_client(chat_config(base_url, timeout_seconds=0.5))
    fake.enqueue(scenario)
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "m", "go")
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
        again = await send_chat(ws, "n", "again", sessionId=frames[0]["sessionId"])

    assert kinds(frames)[:2] == ["session.created", "chat.stream.start"]
    assert deltas(frames) == "partial"
    error = frames[-1]
    assert (error["code"], error["requestId"], error["retryable"]) == (code, "m", True)
    assert messages(home)[:2] == [("user", "go", 1), ("assistant", "partial", 0)]
    first = usage_rows(home)[0]
    assert first["input_tokens"] == 11  # reported by message_start, so billed, so kept
    assert first["stop_reason"] == "error"
    assert again[-1]["type"] == "chat.stream.end"
