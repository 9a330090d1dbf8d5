"""chat.send to OpenAI-kind providers end to end: the gateway against the fake OpenAI
upstream (a keyed "openai" and a keyless local one), then the database."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_openai import FakeOpenAI, Scenario, running_fake_openai

from agentspace_gateway.config import AnthropicConfig, Config, ProviderConfig
from agentspace_gateway.home import Home

from chat_helpers import deltas, messages, send_chat, shape, until_end, usage_rows
from wsclient import exchange, receive, request

Fakes = tuple[FakeOpenAI, str, FakeOpenAI, str]
Client = TestClient[web.Request, web.Application]
KEY = "sk-test-openai-key-for-the-fake"
# "You are a helpful AI assistant." (31) + "hello" (5) = 36 characters: 36 // 4 + 1 = 10.
PROMPT_TOKENS = 10


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        running_fake_openai(FakeOpenAI({KEY})) as (keyed, keyed_url),
        running_fake_openai() as (local, local_url),
    ):
        yield keyed, keyed_url, local, local_url


@pytest.fixture
async def gateway(make_client, fakes, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_OPENAI_KEY", KEY)
    _, keyed_url, _, local_url = fakes
    providers = {
        "openai": ProviderConfig(kind="openai", base_url=keyed_url, key="env:TEST_OPENAI_KEY"),
        "lab": ProviderConfig(kind="openai", base_url=local_url, key="none"),
    }
    # No retries, as chat_config: test_upstream_waits covers them.
    return await make_client(
        Config(
            providers=providers,
            models={"fast": "lab/tiny-1.5b"},
            anthropic=AnthropicConfig(max_retries=0),
        )
    )


async def test_an_openai_model_streams_and_is_billed_to_the_nano_dollar(
    gateway: Client, fakes: Fakes, home: Home
) -> None:
    keyed, _, _, _ = fakes
    keyed.enqueue(Scenario(text_chunks=["Hi", " there", "!"], cached_tokens=4))
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="openai/gpt-4.1")
    assert shape(frames) == [
        "session.created",
        "chat.stream.start",
        "chat.stream.delta",
        "chat.stream.end",
    ]
    assert frames[1]["model"] == "openai/gpt-4.1"
    assert deltas(frames) == "Hi there!"
    end = frames[-1]
    assert end["stopReason"] == "end_turn"
    assert end["usage"]["inputTokens"] == PROMPT_TOKENS
    assert end["usage"]["cacheReadInputTokens"] == 4
    assert end["usage"]["outputTokens"] == 3
    # gpt-4.1 per million tokens: $2 input, $0.5 cached input, $8 output.
    # 10 x 2000 + 4 x 500 = 22,000 nano-dollars in; 3 x 8000 = 24,000 out.
    assert end["cost"]["inputCostNanos"] == 22_000
    assert end["cost"]["outputCostNanos"] == 24_000
    assert end["cost"]["totalCostNanos"] == 46_000
    assert end["cost"]["priceSource"] == "genai-prices"
    [row] = usage_rows(home)
    assert row["model"] == "openai/gpt-4.1"
    assert (row["input_tokens"], row["cache_read_input_tokens"], row["output_tokens"]) == (10, 4, 3)
    assert row["cost_nanousd"] == 46_000
    assert row["priced"] == 1
    assert messages(home)[-1][:2] == ("assistant", "Hi there!")
    [sent] = keyed.requests
    assert sent.api_key == KEY
    assert sent.body["model"] == "gpt-4.1"
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"][0] == {
        "role": "system",
        "content": "You are a helpful AI assistant.",
    }
    assert sent.body["messages"][-1] == {"role": "user", "content": "hello"}


async def test_a_keyless_local_model_through_an_alias_costs_nothing_and_says_local(
    gateway: Client, fakes: Fakes, home: Home
) -> None:
    _, _, local, _ = fakes
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="fast")
    end = frames[-1]
    assert end["type"] == "chat.stream.end"
    assert deltas(frames) == "Hello, world!"
    assert end["cost"]["priced"] is True
    assert end["cost"]["priceSource"] == "local"
    assert end["cost"]["totalCostNanos"] == 0
    [sent] = local.requests
    assert sent.api_key is None
    assert "Authorization" not in sent.headers
    assert sent.body["model"] == "tiny-1.5b"
    [row] = usage_rows(home)
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == ("lab/tiny-1.5b", 10, 4)
    assert json.loads(row["prices"])["source"] == "local"


async def test_an_upstream_error_reaches_the_client_in_the_gateways_codes(
    gateway: Client, fakes: Fakes
) -> None:
    keyed, _, _, _ = fakes
    keyed.enqueue(Scenario.error(429, retry_after="3"))
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="openai/gpt-4.1")
    error = frames[-1]
    assert error["type"] == "error"
    assert error["code"] == "RATE_LIMITED"
    assert error["retryAfterMs"] == 3000


async def test_a_cut_stream_keeps_what_came_marked_incomplete(
    gateway: Client, fakes: Fakes, home: Home
) -> None:
    keyed, _, _, _ = fakes
    keyed.enqueue(Scenario(cut_after=2))
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="openai/gpt-4.1")
    assert deltas(frames) == "Hello, "
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "LLM_ERROR"
    assert messages(home)[-1][:2] == ("assistant", "Hello, ")


async def test_a_model_no_provider_serves_is_refused_naming_the_providers(gateway: Client) -> None:
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="gpt-4o")
    error = frames[-1]
    assert error["code"] == "UNKNOWN_PROVIDER"
    assert "anthropic, lab, ollama, openai" in error["message"]


async def test_a_missing_key_says_how_to_set_it(
    gateway: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_OPENAI_KEY")
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model="openai/gpt-4.1")
    assert frames[-1]["code"] == "NO_API_KEY"
    assert "TEST_OPENAI_KEY" in frames[-1]["message"]


async def test_chat_cancel_closes_the_upstream_request_and_keeps_the_reply(
    gateway: Client, fakes: Fakes, home: Home
) -> None:
    keyed, _, _, _ = fakes
    keyed.enqueue(Scenario(text_chunks=["tick "] * 500, chunk_delay=0.01))
    async with gateway.ws_connect("/gateway") as ws:
        await request(
            ws, {"type": "chat.send", "id": "s", "content": "count", "model": "openai/gpt-4.1"}
        )
        before: list[dict[str, Any]] = []
        while sum(1 for f in before if f["type"] == "chat.stream.delta") < 2:
            before.append(await receive(ws))
        await request(ws, {"type": "chat.cancel", "id": "c", "requestId": "s"})
        after = await until_end(ws, "s")
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
    assert after[-1]["type"] == "chat.stream.end"
    assert after[-1]["stopReason"] == "cancelled"
    streamed = deltas(before + after)
    assert streamed.startswith("tick tick ")
    assert len(streamed) < 500 * len("tick ")
    assert messages(home)[-1] == ("assistant", streamed, 0)
    assert keyed.outcomes == []  # the upstream request was closed before its end
