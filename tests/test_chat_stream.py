"""chat.send end to end: the real SDK against the fake upstream, then the database."""

import asyncio
import json
from decimal import Decimal

import pytest

from agentspace_gateway.home import Home
from agentspace_gateway.pricing import PriceBook, TokenCounts

from chat_helpers import deltas, kinds, messages, query, send_chat, shape, until_end, usage_rows
from conftest import TEST_API_KEY
from fake_anthropic import Scenario
from wsclient import exchange, receive, request

SYSTEM_PROMPT = "You are a helpful AI assistant."


async def test_a_reply_streams_and_is_stored_with_its_cost(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(
            text_chunks=["Hel", "lo", " there", "!"],
            input_tokens=1234,
            output_tokens=567,
            cache_creation_input_tokens=2000,
            cache_read_input_tokens=10_000,
            ping_every=1,
        )
    )
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="claude-sonnet-4-6")

    assert shape(frames) == [
        "session.created",
        "chat.stream.start",
        "chat.stream.delta",
        "chat.stream.end",
    ]
    session_id = frames[0]["sessionId"]
    assert frames[1] == {
        "type": "chat.stream.start",
        "requestId": "t1",
        "sessionId": session_id,
        "model": "claude-sonnet-4-6",
    }
    assert deltas(frames) == "Hello there!"
    end = frames[-1]
    assert end["usage"] == {
        "inputTokens": 1234,
        "outputTokens": 567,
        "cacheCreationInputTokens": 2000,
        "cacheReadInputTokens": 10_000,
        "totalTokens": 1234 + 567 + 2000 + 10_000,
        "cacheCreation1hInputTokens": 0,
    }
    # Anthropic's published Sonnet 4.6 prices per million tokens, worked by hand:
    # $3 input, $15 output, $3.75 cache write, $0.30 cache read.
    input_side = 1234 * 3_000 + 2000 * 3_750 + 10_000 * 300  # nano-dollars
    output = 567 * 15_000
    assert end["cost"] == {
        "inputCost": input_side / 1e9,
        "outputCost": output / 1e9,
        "totalCost": (input_side + output) / 1e9,
        "priced": True,
        "inputCostNanos": input_side,
        "outputCostNanos": output,
        "totalCostNanos": input_side + output,
        "priceSource": "genai-prices",
    }
    assert end["stopReason"] == "end_turn"

    assert messages(home) == [("user", "hello", 1), ("assistant", "Hello there!", 1)]
    [row] = usage_rows(home)
    assert row["cost_nanousd"] == input_side + output == 22_707_000
    assert (row["input_cost_nanousd"], row["output_cost_nanousd"]) == (1234 * 3_000, output)
    assert (row["cache_write_cost_nanousd"], row["cache_read_cost_nanousd"]) == (
        7_500_000,
        3_000_000,
    )
    assert json.loads(row["prices"]) == {
        "inputPerMTok": "3",
        "outputPerMTok": "15",
        "cacheReadPerMTok": "0.3",
        "cacheWritePerMTok": "3.75",
        "cacheWrite1hPerMTok": "6",
        "source": "genai-prices",
    }
    assert row["stop_reason"] == "end_turn"
    assert row["estimated_input_tokens"] > 0
    assistant = query(
        home, "SELECT token_count, token_estimate, request_id FROM messages WHERE role='assistant'"
    )[0]
    assert assistant["token_count"] == 567
    assert assistant["token_estimate"] > 0
    assert assistant["request_id"] == row["request_id"]


async def test_exactly_the_assembled_context_is_sent(chat_client, fake_anthropic) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["First answer."]), Scenario(text_chunks=["Second answer."]))
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "a", "first question", model="claude-haiku-4.5")
        session_id = first[0]["sessionId"]
        second = await send_chat(ws, "b", "second question", sessionId=session_id)

    assert "session.created" not in kinds(second)
    assert second[0]["model"] == "claude-haiku-4-5"  # the session keeps its model
    sent = [r.json for r in fake.message_requests]
    assert sent[0]["system"] == SYSTEM_PROMPT
    assert sent[0]["messages"] == [{"role": "user", "content": "first question"}]
    assert sent[1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "second question"},
    ]
    assert sent[1]["model"] == "claude-haiku-4-5"
    assert sent[1]["stream"] is True
    assert fake.message_requests[1].api_key == TEST_API_KEY


async def test_a_message_without_session_starts_a_separate_one(chat_client, home: Home) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        one = await send_chat(ws, "a", "hi")
        two = await send_chat(ws, "b", "hi again")
    assert one[0]["sessionId"] != two[0]["sessionId"]
    assert len(query(home, "SELECT id FROM sessions")) == 2


async def test_unknown_events_and_missing_usage_are_tolerated(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(text_chunks=["a", "b", "c"], unknown_event_after=1, output_tokens=3),
        Scenario(text_chunks=["x"], message_start_without_usage=True, output_tokens=1),
    )
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "u", "one")
        second = await send_chat(ws, "v", "two")
    assert deltas(first) == "abc"
    assert first[-1]["type"] == "chat.stream.end"
    assert second[-1]["type"] == "chat.stream.end"
    assert second[-1]["usage"]["outputTokens"] == 1
    assert all(complete == 1 for _, _, complete in messages(home))


async def test_no_key_is_no_api_key_and_the_message_is_kept(
    make_client, fake_anthropic, home: Home
) -> None:
    from conftest import chat_config

    client = await make_client(chat_config(fake_anthropic[1]))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "k", "anyone there?")
    error = frames[-1]
    assert (error["code"], error["requestId"]) == ("NO_API_KEY", "k")
    # No vault here (no keychain, no passphrase), so `keys add` alone would fail: the steps
    # named are the ones that work without one (tests/test_first_run.py follows them).
    assert error["message"].startswith("Anthropic API key not configured, and the gateway has")
    assert "ANTHROPIC_API_KEY=… agentspace-gateway serve" in error["message"]
    assert "set AGENTSPACE_VAULT_PASSPHRASE to a long passphrase, run:" in error["message"]
    assert messages(home) == [("user", "anyone there?", 1)]
    assert fake_anthropic[0].message_requests == []


async def test_the_vault_key_wins_and_a_new_key_rebuilds_the_client(
    make_client, fake_anthropic, vault, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import chat_config

    fake, base_url = fake_anthropic
    # The vault read is kept for a second; here every send reads it (the window itself is
    # tested in test_anthropic_clients.py).
    monkeypatch.setattr("agentspace_gateway.llm.client.KEY_FRESH_SECONDS", 0.0)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment-0000")
    vault.add_key("anthropic", "sk-ant-from-the-vault-1111")
    client = await make_client(chat_config(base_url))
    async with client.ws_connect("/gateway") as ws:
        await send_chat(ws, "a", "one")
        vault.update_key("anthropic", "sk-ant-rotated-in-the-vault-2222")
        await send_chat(ws, "b", "two")
    keys = [r.api_key for r in fake.message_requests]
    assert keys == ["sk-ant-from-the-vault-1111", "sk-ant-rotated-in-the-vault-2222"]
    events = [
        row["event"]
        for row in query(home, "SELECT event FROM audit_log WHERE provider='anthropic'")
    ]
    assert events.count("key.use") == 2


async def test_a_second_send_during_a_stream_is_stream_in_progress(
    chat_client, fake_anthropic
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["slow"] * 20, delay_between_chunks=0.05))
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "long", "content": "tell me a story"})
        started = await receive(ws)
        while started["type"] != "chat.stream.start":
            started = await receive(ws)
        refused = await exchange(ws, {"type": "chat.send", "id": "again", "content": "and another"})
        while refused.get("requestId") != "again":
            refused = await receive(ws)
        frames = await until_end(ws, "long")
    assert refused["code"] == "STREAM_IN_PROGRESS"
    assert frames[-1]["type"] == "chat.stream.end"
    assert deltas(frames).count("slow") >= 1


async def test_cost_is_exact_for_tiny_cache_reads(chat_client, fake_anthropic) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(text_chunks=["."], input_tokens=0, output_tokens=0, cache_read_input_tokens=1)
    )
    async with chat_client.ws_connect("/gateway") as ws:
        end = (await send_chat(ws, "c", "cached", model="claude-sonnet-4-6"))[-1]
    assert end["cost"]["totalCost"] == 0.0000003  # 300 nano-dollars, not rounded to zero
    expected = PriceBook().cost("claude-sonnet-4-6", TokenCounts(0, 0, 0, 1))
    assert expected.total_nanousd == 300
    assert Decimal(expected.total_nanousd) / 10**9 == Decimal("0.0000003")


async def test_an_unpriced_model_says_so(chat_client, fake_anthropic, home: Home) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        end = (await send_chat(ws, "m", "hi", model="claude-future-9"))[-1]
    assert end["cost"] == {
        "inputCost": 0.0,
        "outputCost": 0.0,
        "totalCost": 0.0,
        "priced": False,
        "inputCostNanos": 0,
        "outputCostNanos": 0,
        "totalCostNanos": 0,
    }
    [row] = usage_rows(home)
    assert (row["priced"], row["prices"], row["cost_nanousd"]) == (0, None, 0)


async def test_many_streams_on_many_connections_do_not_mix(
    chat_client, fake_anthropic, home: Home
) -> None:
    async def one(index: int) -> str:
        async with chat_client.ws_connect("/gateway") as ws:
            frames = await send_chat(ws, f"r{index}", f"question {index}")
            return deltas(frames)

    replies = await asyncio.gather(*(one(i) for i in range(8)))
    assert replies == ["Hello, world!"] * 8
    assert len(usage_rows(home)) == 8
