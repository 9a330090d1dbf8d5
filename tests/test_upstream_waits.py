"""Every wait on an upstream is bounded and told to the client (issue 19, finding 5).

An upstream answering 429 with ``retry-after: 3600`` once held a chat for an hour after
``chat.stream.start``, the SDK waiting it out in silence. Now the gateway retries itself: a
retry-after past ``anthropic.max_retry_wait_seconds`` is answered ``RATE_LIMITED`` with its
``retryAfterMs`` at once; a shorter one is waited after a ``chat.stream.status``; and the
HTTP doors never wait at all, the 429 reaching their caller as it came. Through the real
anthropic and openai SDKs against the fake upstreams.
"""

import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_openai import FakeOpenAI, running_fake_openai
from fake_openai import Scenario as OpenAIScenario

from agentspace_gateway.config import Config, ProviderConfig
from agentspace_gateway.home import Home

from chat_helpers import deltas, kinds, messages, send_chat, usage_rows
from conftest import TEST_API_KEY, chat_config
from fake_anthropic import Scenario
from proxy_helpers import PROVIDER_KEY, issue, proxy_config

Client = TestClient[web.Request, web.Application]
CHUNKS = ["wa", "it", "ed"]
OPENAI_KEY = "sk-test-openai-key-for-the-fake"


async def chat_gateway(make_client: Any, base_url: str, **anthropic: Any) -> Client:
    client: Client = await make_client(chat_config(base_url, **anthropic))
    return client


def statuses(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == "chat.stream.status"]


async def test_a_retry_after_of_an_hour_is_not_waited_but_answered_at_once(
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    # The defaults: two retries, at most 30 s of waiting, a 600 s timeout.
    client = await chat_gateway(make_client, base_url, max_retries=2, timeout_seconds=600.0)
    fake.enqueue(Scenario.rate_limited(retry_after="3600"))
    began = time.monotonic()
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")
    elapsed = time.monotonic() - began

    assert elapsed < 3.0
    error = frames[-1]
    assert (error["type"], error["code"], error["requestId"]) == ("error", "RATE_LIMITED", "r")
    assert (error["retryable"], error["retryAfterMs"]) == (True, 3_600_000)
    assert statuses(frames) == []  # no wait was begun, so none was announced
    assert len(fake.message_requests) == 1
    assert messages(home) == [("user", "hello", 1)]
    assert usage_rows(home) == []


async def test_a_short_retry_after_is_announced_then_waited_then_the_reply_streams(
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=1)
    fake.enqueue(Scenario.rate_limited(retry_after="1"), Scenario(text_chunks=CHUNKS))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    first, second = fake.message_requests
    assert second.received_at - first.received_at >= 1.0
    # The status comes after chat.stream.start (the stream it belongs to), before any text.
    assert kinds(frames)[:3] == ["session.created", "chat.stream.start", "chat.stream.status"]
    [status] = statuses(frames)
    assert status == {
        "type": "chat.stream.status",
        "requestId": "r",
        "waitingMs": 1000,
        "retry": 1,
        "reason": "RATE_LIMITED",
        "message": "This request would exceed your organization's rate limit.",
    }
    assert frames[-1]["type"] == "chat.stream.end"
    assert deltas(frames) == "waited"
    [row] = usage_rows(home)  # the 429 reported nothing and is billed nothing
    assert row["stop_reason"] == "end_turn"


async def test_retries_without_retry_after_back_off_briefly_and_are_each_announced(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=2)
    fake.enqueue(Scenario.server_error(), Scenario.overloaded(), Scenario(text_chunks=CHUNKS))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    assert frames[-1]["type"] == "chat.stream.end"
    assert [(s["retry"], s["reason"]) for s in statuses(frames)] == [
        (1, "LLM_ERROR"),
        (2, "UPSTREAM_OVERLOADED"),
    ]
    # The SDK's own backoff: 0.5 s then 1 s, less up to a quarter of jitter.
    first, second = (s["waitingMs"] for s in statuses(frames))
    assert 375 <= first <= 500
    assert 750 <= second <= 1000
    assert len(fake.message_requests) == 3


async def test_retries_stop_when_max_retries_is_spent(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=1)
    fake.enqueue(Scenario.rate_limited(retry_after="0.2"), Scenario.rate_limited(retry_after="5"))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    assert [s["waitingMs"] for s in statuses(frames)] == [200]
    error = frames[-1]
    assert (error["code"], error["retryAfterMs"]) == ("RATE_LIMITED", 5000)
    assert len(fake.message_requests) == 2


async def test_retry_after_ms_is_read_too_and_bounded_the_same(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=2)
    fake.enqueue(
        Scenario.error(429, headers={"retry-after-ms": "250"}),
        Scenario.error(429, headers={"retry-after-ms": "3600000"}),
    )
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    assert [(s["waitingMs"], s["retry"]) for s in statuses(frames)] == [(250, 1)]
    assert (frames[-1]["code"], frames[-1]["retryAfterMs"]) == ("RATE_LIMITED", 3_600_000)
    assert len(fake.message_requests) == 2


async def test_the_timeout_bounds_the_retries_and_waits_together(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    # Three seconds is within max_retry_wait_seconds but past the one-second timeout.
    client = await chat_gateway(make_client, base_url, max_retries=2, timeout_seconds=1.0)
    fake.enqueue(Scenario.rate_limited(retry_after="3"))
    began = time.monotonic()
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    assert time.monotonic() - began < 1.0 + 2.0
    assert statuses(frames) == []
    assert (frames[-1]["code"], frames[-1]["retryAfterMs"]) == ("RATE_LIMITED", 3000)
    assert len(fake.message_requests) == 1


async def test_a_lower_max_retry_wait_refuses_a_wait_the_default_would_take(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=2, max_retry_wait_seconds=0.5)
    fake.enqueue(Scenario.rate_limited(retry_after="1"))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "r", "hello")

    assert statuses(frames) == []
    assert (frames[-1]["code"], frames[-1]["retryAfterMs"]) == ("RATE_LIMITED", 1000)


async def test_a_cancel_during_a_wait_ends_the_stream_at_once(
    make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = fake_anthropic
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    client = await chat_gateway(make_client, base_url, max_retries=1, timeout_seconds=60.0)
    fake.enqueue(Scenario.rate_limited(retry_after="20"))
    async with client.ws_connect("/gateway") as ws:
        await ws.send_json({"type": "chat.send", "id": "r", "content": "hello"})
        while (await ws.receive_json(timeout=5))["type"] != "chat.stream.status":
            pass
        began = time.monotonic()
        await ws.send_json({"type": "chat.cancel", "id": "x", "requestId": "r"})
        while (end := await ws.receive_json(timeout=5))["type"] != "chat.stream.end":
            pass
    assert time.monotonic() - began < 2.0
    assert end["stopReason"] == "cancelled"
    assert len(fake.message_requests) == 1


# -- an OpenAI-kind provider takes the same path -------------------------------------------


@pytest.fixture
async def openai_upstream(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[FakeOpenAI, str]]:
    monkeypatch.setenv("TEST_OPENAI_KEY", OPENAI_KEY)
    async with running_fake_openai(FakeOpenAI({OPENAI_KEY})) as running:
        yield running


async def openai_gateway(make_client: Any, base_url: str, **anthropic: Any) -> Client:
    key = "env:TEST_OPENAI_KEY"
    providers = {"openai": ProviderConfig(kind="openai", base_url=base_url, key=key)}
    config = Config(providers=providers)
    config = attrs.evolve(config, anthropic=attrs.evolve(config.anthropic, **anthropic))
    client: Client = await make_client(config)
    return client


async def test_an_openai_provider_retry_after_of_an_hour_is_answered_at_once(
    make_client, openai_upstream
) -> None:
    fake, base_url = openai_upstream
    client = await openai_gateway(make_client, base_url, max_retries=2)
    fake.enqueue(OpenAIScenario.error(429, retry_after="3600"))
    began = time.monotonic()
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "o", "hello", model="openai/gpt-4.1")

    assert time.monotonic() - began < 3.0
    assert (frames[-1]["code"], frames[-1]["retryAfterMs"]) == ("RATE_LIMITED", 3_600_000)
    assert statuses(frames) == []
    assert len(fake.requests) == 1


async def test_an_openai_provider_short_retry_after_is_announced_and_retried(
    make_client, openai_upstream
) -> None:
    fake, base_url = openai_upstream
    client = await openai_gateway(make_client, base_url, max_retries=1)
    fake.enqueue(OpenAIScenario.error(429, retry_after="1"), OpenAIScenario(text_chunks=CHUNKS))
    began = time.monotonic()
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "o", "hello", model="openai/gpt-4.1")

    assert time.monotonic() - began >= 1.0
    [status] = statuses(frames)
    assert (status["waitingMs"], status["retry"], status["reason"]) == (1000, 1, "RATE_LIMITED")
    assert frames[-1]["type"] == "chat.stream.end"
    assert deltas(frames) == "waited"
    assert len(fake.requests) == 2


# -- the HTTP doors never wait: the caller's SDK decides ----------------------------------


async def test_the_openai_door_to_anthropic_passes_a_429_on_without_waiting(
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    config = proxy_config(base_url)
    # The gateway's own retries are on; the door must still not use them.
    config = attrs.evolve(config, anthropic=attrs.evolve(config.anthropic, max_retries=2))
    client = await make_client(config)
    key = await issue(client, "tool")
    sdk = openai.AsyncOpenAI(
        api_key=key.secret, base_url=str(client.make_url("/v1")), max_retries=0
    )
    fake.enqueue(Scenario.rate_limited(retry_after="3600"))
    began = time.monotonic()
    with pytest.raises(openai.RateLimitError) as raised:
        await sdk.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
        )
    assert time.monotonic() - began < 3.0
    assert raised.value.response.headers["retry-after"] == "3600"
    assert len(fake.message_requests) == 1
    await sdk.close()
