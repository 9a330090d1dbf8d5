"""A request a budget has no room for is refused in its door's own language, and nothing
goes upstream: the WebSocket's BUDGET_EXCEEDED, the Anthropic API's 429 rate_limit_error
and the OpenAI API's 429 insufficient_quota, which the real SDKs, retries enabled, do not
retry. A budget set to clip sends the request with a max_tokens that fits instead."""

import json
from typing import Any

import anthropic
import openai
import pytest
from budgets_helpers import (
    App,
    Attempts,
    anthropic_sdk,
    fake_openai_fixture,  # noqa: F401 - the fixture
    gateway_fixture,  # noqa: F401 - the fixture
    open_reservations,
    openai_sdk,
    rows,
    set_budget,
    standings,
    usage_count,
)
from fake_openai import FakeOpenAI
from fake_openai import Scenario as OpenAIScenario

from agentspace_gateway.config import AnthropicConfig, Config, PriceOverride
from agentspace_gateway.home import Home

from chat_helpers import send_chat
from conftest import TEST_API_KEY
from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import MODEL, PROVIDER_KEY, issue

# claude-sonnet-4-5 in nano-dollars per token: the dearest input-side rate is a one-hour
# cache write ($6/MTok, 2x input); output is $15/MTok.
WORST_INPUT_NANOS, OUTPUT_NANOS = 6000, 15000
HI: Any = [{"role": "user", "content": "hi"}]


async def test_the_anthropic_api_refuses_with_a_429_the_sdk_does_not_retry(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    await set_budget(gateway, 100_000)  # not even 8 tokens of output ($0.00012)
    key = await issue(gateway, "laptop")
    attempts = Attempts()
    async with anthropic_sdk(gateway, key.secret, attempts) as sdk:
        with pytest.raises(anthropic.RateLimitError) as raised:
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
    response = raised.value.response
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert "Budget exceeded" in body["error"]["message"]
    assert "nothing was sent upstream" in body["error"]["message"]
    assert attempts.count == 1  # max_retries=3, and not one retry
    fake, _ = fake_anthropic
    assert fake.message_requests == []
    assert usage_count(home) == 0
    assert open_reservations(home) == 0


@pytest.mark.parametrize("model", ["openai/gpt-4.1", MODEL])
async def test_the_openai_api_refuses_with_insufficient_quota_the_sdk_does_not_retry(
    gateway: App,
    fake_anthropic: tuple[FakeAnthropic, str],
    fake_openai: tuple[FakeOpenAI, str],
    home: Home,
    model: str,
) -> None:
    """Passed through to an OpenAI-kind provider, and translated to Anthropic."""
    await set_budget(gateway, 1_000)
    key = await issue(gateway, "aider")
    attempts = Attempts()
    async with openai_sdk(gateway, key.secret, attempts) as sdk:
        with pytest.raises(openai.RateLimitError) as raised:
            await sdk.chat.completions.create(model=model, messages=HI, max_tokens=8)
    assert raised.value.status_code == 429
    assert raised.value.code == "insufficient_quota"
    assert raised.value.type == "insufficient_quota"
    assert raised.value.param is None
    assert "Budget exceeded" in raised.value.message
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert attempts.count == 1
    assert fake_openai[0].requests == []
    assert fake_anthropic[0].message_requests == []
    assert usage_count(home) == 0
    assert open_reservations(home) == 0


async def test_the_websocket_refuses_with_budget_exceeded_and_its_figures(
    gateway: App,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    await set_budget(gateway, 12_345_678, period="month")
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL)
    error = frames[-1]
    assert error["type"] == "error"
    assert error["code"] == "BUDGET_EXCEEDED"
    assert error["retryable"] is False
    details = error["details"]
    [standing] = await standings(gateway)
    assert details == {
        "reason": "limit",
        "scopeKind": "global",
        "scopeId": "",
        "period": "month",
        "limitNanos": 12_345_678,
        "spentNanos": 0,
        "reservedNanos": 0,
        "neededNanos": details["neededNanos"],
        "resetsAt": standing.resets_at,
    }
    # The chat's default max_tokens (4096) of output alone is $0.06144.
    assert details["neededNanos"] > 4096 * OUTPUT_NANOS > 12_345_678
    assert standing.resets_at is not None
    assert standing.resets_at.endswith("T00:00:00.000Z")
    assert fake_anthropic[0].message_requests == []
    assert usage_count(home) == 0
    assert open_reservations(home) == 0
    # The message itself is kept, as for any request that never went upstream.
    assert [r["content"] for r in rows(home, "SELECT content FROM messages")] == ["hello"]


async def test_a_budget_that_clips_sends_a_max_tokens_that_fits_and_says_so(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    limit = 1_000_000  # $0.001: about 60 tokens of output once the input is reserved
    await set_budget(gateway, limit, clip=True)
    key = await issue(gateway, "laptop")
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["ok"], input_tokens=10, output_tokens=2))
    async with anthropic_sdk(gateway, key.secret, Attempts()) as sdk:
        raw = await sdk.messages.with_raw_response.create(model=MODEL, max_tokens=1000, messages=HI)
    clipped = int(raw.headers["x-agentspace-max-tokens-clipped"])
    [received] = fake.message_requests
    sent = json.loads(received.body)
    assert sent["max_tokens"] == clipped
    # Every other field went as it came.
    assert {k: v for k, v in sent.items() if k != "max_tokens"} == {
        "model": MODEL,
        "messages": HI,
    }
    # The most that fits: its worst case within the limit, with an input under 100 tokens.
    assert clipped * OUTPUT_NANOS <= limit
    assert clipped >= (limit - 100 * WORST_INPUT_NANOS) // OUTPUT_NANOS
    [standing] = await standings(gateway)
    assert (standing.spent_nanousd, standing.reserved_nanousd) == (10 * 3000 + 2 * 15000, 0)


async def test_a_clipped_chat_stream_says_its_max_tokens_at_its_start(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    await set_budget(gateway, 10_000_000, clip=True)  # $0.01: about 600 of 4096 tokens
    fake, _ = fake_anthropic
    async with gateway.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL)
    [start] = [f for f in frames if f["type"] == "chat.stream.start"]
    [received] = fake.message_requests
    assert start["maxTokensClipped"] == json.loads(received.body)["max_tokens"]
    assert 0 < start["maxTokensClipped"] < 4096
    assert frames[-1]["type"] == "chat.stream.end"


async def test_the_openai_passthrough_is_bounded_as_reserved_when_it_names_no_limit(
    gateway: App, fake_openai: tuple[FakeOpenAI, str], home: Home
) -> None:
    await set_budget(gateway, 10**12)
    key = await issue(gateway, "aider")
    fake, _ = fake_openai
    fake.enqueue(OpenAIScenario(text_chunks=["Hi"]))
    async with openai_sdk(gateway, key.secret, Attempts()) as sdk:
        await sdk.chat.completions.create(model="openai/gpt-4.1", messages=HI)
    [received] = fake.requests
    # Unbounded, its worst case could not be reserved: it goes with the gateway's default.
    assert received.body["max_tokens"] == 4096
    assert open_reservations(home) == 0


async def test_an_unpriced_model_is_refused_while_a_budget_applies(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    await set_budget(gateway, 10**12)
    key = await issue(gateway, "laptop")
    async with anthropic_sdk(gateway, key.secret, Attempts()) as sdk:
        with pytest.raises(anthropic.RateLimitError) as raised:
            await sdk.messages.create(model="claude-nobody-knows-9", max_tokens=8, messages=HI)
    assert "has no known price" in raised.value.message
    assert "[pricing.unknown_model]" in raised.value.message
    assert fake_anthropic[0].message_requests == []
    assert usage_count(home) == 0


async def test_an_unknown_model_priced_by_unknown_model_goes_and_is_billed(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    config = Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0),
        pricing={"unknown_model": PriceOverride(input=10.0, output=50.0)},
    )
    client = await make_client(config)
    await set_budget(client, 10**12)
    key = await issue(client, "laptop")
    fake.enqueue(Scenario(text_chunks=["ok"], input_tokens=10, output_tokens=2))
    async with anthropic_sdk(client, key.secret, Attempts()) as sdk:
        await sdk.messages.create(model="claude-nobody-knows-9", max_tokens=8, messages=HI)
    assert len(fake.message_requests) == 1
    [standing] = await standings(client)
    # $10/MTok in, $50/MTok out: 10 x 10,000 + 2 x 50,000 nano-dollars.
    assert (standing.spent_nanousd, standing.reserved_nanousd) == (200_000, 0)


async def test_a_clipped_openai_request_with_n_choices_sends_each_its_share(
    gateway: App, fake_openai: tuple[FakeOpenAI, str], home: Home
) -> None:
    limit = 1_000_000  # gpt-4.1 output is $8/MTok: about 120 tokens in all
    await set_budget(gateway, limit, clip=True)
    key = await issue(gateway, "aider")
    fake, _ = fake_openai
    fake.enqueue(OpenAIScenario(text_chunks=["Hi"]))
    async with openai_sdk(gateway, key.secret, Attempts()) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="openai/gpt-4.1", messages=HI, max_tokens=1000, n=2
        )
    per_choice = int(raw.headers["x-agentspace-max-tokens-clipped"])
    [received] = fake.requests
    assert received.body["max_tokens"] == per_choice
    assert received.body["n"] == 2
    # Both choices' worst case fits, at $8/MTok of output.
    assert 0 < 2 * per_choice * 8000 <= limit
    assert open_reservations(home) == 0
