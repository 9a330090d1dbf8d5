"""The fake OpenAI upstream, checked with the real ``openai`` SDK as its client: what the
gateway is tested against is the protocol OpenAI's own client reads."""

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from fake_openai import FakeOpenAI, Scenario, running_fake_openai


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, openai.AsyncOpenAI]]:
    async with running_fake_openai(FakeOpenAI({"sk-test"})) as (server, base_url):
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url, max_retries=0)
        yield server, client
        await client.close()


MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello to the world"}
]


async def test_a_stream_with_include_usage_ends_with_the_usage_chunk(fake) -> None:  # type: ignore[no-untyped-def]
    server, client = fake
    server.enqueue(Scenario(text_chunks=["Hi", " there"], cached_tokens=3))
    stream = await client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    # "Say hello to the world" is 22 characters: 22 // 4 + 1 = 6, plus 3 cached.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 2, 11)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 3


async def test_a_stream_without_include_usage_has_no_usage(fake) -> None:  # type: ignore[no-untyped-def]
    _, client = fake
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


async def test_a_reply_that_is_not_streamed(fake) -> None:  # type: ignore[no-untyped-def]
    server, client = fake
    server.enqueue(Scenario(tool_calls=[("call_1", "get_weather", ['{"city"', ': "Oslo"}'])]))
    reply = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello, world!"
    calls = reply.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.arguments == '{"city": "Oslo"}'
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


async def test_errors_are_in_openais_envelope(fake) -> None:  # type: ignore[no-untyped-def]
    server, client = fake
    server.enqueue(Scenario.error(429, retry_after="7"))
    with pytest.raises(openai.RateLimitError) as raised:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after"] == "7"
    wrong = openai.AsyncOpenAI(api_key="sk-wrong", base_url=str(client.base_url), max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        await wrong.chat.completions.create(model="m", messages=MESSAGES)
    await wrong.close()
    assert refused.value.code == "invalid_api_key"


async def test_a_cut_stream_breaks_the_sdks_read(fake) -> None:  # type: ignore[no-untyped-def]
    server, client = fake
    server.enqueue(Scenario(cut_after=2))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk)

    # Mid-stream, the SDK lets its transport's error through unwrapped.
    with pytest.raises(httpx.RemoteProtocolError):
        await read_all()
    assert server.outcomes == ["cut"]
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Hello, "
