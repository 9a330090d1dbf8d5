"""llm/openai_stream.py against the fake OpenAI upstream: the chunk protocol turned into
metering events, usage with cached input taken apart, failures in the gateway's codes."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from fake_openai import FakeOpenAI, Scenario, running_fake_openai

from agentspace_gateway.llm.openai_stream import openai_events
from agentspace_gateway.metering import Failed, Stopped, TextStreamed, UsageReported
from agentspace_gateway.metering.events import StreamEvent
from agentspace_gateway.pricing import TokenCounts
from agentspace_gateway.protocol.errors import ErrorCode

BODY = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Say hello to the world"}]}


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAI, str, aiohttp.ClientSession]]:
    async with (
        running_fake_openai(FakeOpenAI({"sk-test"})) as (fake, base_url),
        aiohttp.ClientSession() as session,
    ):
        yield fake, base_url, session


async def events(upstream, key: str | None = "sk-test") -> list[StreamEvent]:  # type: ignore[no-untyped-def]
    _, base_url, session = upstream
    return [e async for e in openai_events(session, base_url, key, BODY, provider="openai")]


async def test_text_finish_and_usage_with_cached_input_apart(upstream) -> None:  # type: ignore[no-untyped-def]
    fake, _, _ = upstream
    fake.enqueue(Scenario(text_chunks=["Hi", " there"], cached_tokens=4))
    assert await events(upstream) == [
        TextStreamed("Hi"),
        TextStreamed(" there"),
        Stopped("end_turn"),
        # prompt_tokens 6 + 4 cached: 6 uncached input, 4 cache reads.
        UsageReported(TokenCounts(input_tokens=6, output_tokens=2, cache_read_input_tokens=4)),
    ]
    sent = fake.requests[-1]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.api_key == "sk-test"


async def test_a_server_that_never_reports_usage_reports_nothing(upstream) -> None:  # type: ignore[no-untyped-def]
    fake, _, _ = upstream
    fake.enqueue(Scenario(omit_usage=True, finish_reason="length"))
    got = await events(upstream)
    assert [type(e) for e in got] == [TextStreamed] * 4 + [Stopped]
    assert got[-1] == Stopped("max_tokens")


async def test_a_cut_stream_keeps_its_text_and_fails(upstream) -> None:  # type: ignore[no-untyped-def]
    fake, _, _ = upstream
    fake.enqueue(Scenario(cut_after=2))
    got = await events(upstream)
    assert got[:2] == [TextStreamed("Hello"), TextStreamed(", ")]
    assert len(got) == 3
    assert isinstance(got[2], Failed)
    assert got[2].error.code == ErrorCode.LLM_ERROR
    assert got[2].error.retryable


async def test_a_rate_limit_carries_retry_after(upstream) -> None:  # type: ignore[no-untyped-def]
    fake, _, _ = upstream
    fake.enqueue(Scenario.error(429, retry_after="7"))
    [failed] = await events(upstream)
    assert isinstance(failed, Failed)
    assert failed.error.code == ErrorCode.RATE_LIMITED
    assert failed.error.retry_after_ms == 7000
    assert "Rate limit reached" in failed.error.message


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, ErrorCode.CONTEXT_TOO_LONG), (500, ErrorCode.LLM_ERROR), (404, ErrorCode.LLM_ERROR)],
)
async def test_statuses_map_to_the_gateways_codes(upstream, status: int, code: ErrorCode) -> None:  # type: ignore[no-untyped-def]
    fake, _, _ = upstream
    fake.enqueue(Scenario.error(status))
    [failed] = await events(upstream)
    assert isinstance(failed, Failed)
    assert failed.error.code == code


async def test_a_wrong_key_is_an_authentication_failure(upstream) -> None:  # type: ignore[no-untyped-def]
    [failed] = await events(upstream, key="sk-wrong")
    assert isinstance(failed, Failed)
    assert failed.error.code == ErrorCode.AUTHENTICATION_FAILED
    assert not failed.error.retryable


async def test_a_server_that_is_not_running_is_named() -> None:
    async with aiohttp.ClientSession() as session:
        base_url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
        got = [e async for e in openai_events(session, base_url, None, BODY, provider="ollama")]
    [failed] = got
    assert isinstance(failed, Failed)
    assert failed.error.code == ErrorCode.LLM_ERROR
    assert "ollama (http://127.0.0.1:9/v1)" in failed.error.message
