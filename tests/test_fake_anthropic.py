"""The fake Anthropic API, driven by the real `anthropic` SDK: what the gateway will see."""

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anthropic
import pytest
from anthropic.types import Usage

from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.protocol.errors import GatewayError

from fake_anthropic import PROMPT_TOO_LONG, FakeAnthropic, Scenario, running_fake_anthropic

KEY = "sk-ant-test"
MODEL = "claude-fake-1"  # no real name: the SDK warns about deprecated ones
HISTORY = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]},
]
SYSTEM = "You are terse."


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    async with running_fake_anthropic() as running:
        yield running


@pytest.fixture
def fake(fake_anthropic: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    return fake_anthropic[0]


@pytest.fixture
def base_url(fake_anthropic: tuple[FakeAnthropic, str]) -> str:
    return fake_anthropic[1]


@pytest.fixture
async def sdk(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0, timeout=5.0)
    yield client
    await client.close()


async def stream_texts(client: anthropic.AsyncAnthropic, received: list[str]) -> None:
    """Stream one reply, appending each text delta as it arrives."""
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HISTORY) as stream:
        async for text in stream.text_stream:
            received.append(text)


@dataclass
class Reply:
    """One streamed reply as the gateway takes it: the text as it came, the usage that
    message_start reported (what is billed if the stream then fails), and the failure in the
    gateway's own words. Not the SDK's exception class, which changes between releases (2.17
    began wrapping mid-stream transport errors): these do not."""

    texts: list[str] = field(default_factory=list)
    reported: Usage | None = None
    error: GatewayError | None = None


async def stream_reply(client: anthropic.AsyncAnthropic, reply: Reply) -> None:
    """Stream one reply into `reply`, as it arrives; a failure ends it as the gateway's error."""
    try:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HISTORY) as stream:
            async for event in stream:
                if event.type == "message_start":
                    reply.reported = event.message.usage
                elif event.type == "text":
                    reply.texts.append(event.text)
    except Exception as failure:
        reply.error = upstream_error(failure)


async def until(condition: Callable[[], bool], task: asyncio.Task[None]) -> None:
    """Wait up to 2 s for `condition` while `task` runs; a task that fails says why."""
    async with asyncio.timeout(2):
        while not condition():
            if task.done():
                task.result()
                raise AssertionError("the stream ended before the condition held")
            await asyncio.sleep(0.01)


async def test_stream_yields_the_deltas_in_order_and_the_final_usage(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(
        Scenario(
            text_chunks=["Ro", "me", "."],
            input_tokens=1200,
            output_tokens=7,
            cache_creation_input_tokens=300,
            cache_read_input_tokens=900,
            stop_reason="max_tokens",
        )
    )
    async with sdk.messages.stream(
        model=MODEL, max_tokens=64, system=SYSTEM, messages=HISTORY
    ) as stream:
        texts = [text async for text in stream.text_stream]
        message = await stream.get_final_message()
        request_id = stream.request_id

    assert texts == ["Ro", "me", "."]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Rome."
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "max_tokens"
    assert message.usage.input_tokens == 1200
    assert message.usage.output_tokens == 7
    assert message.usage.cache_creation_input_tokens == 300
    assert message.usage.cache_read_input_tokens == 900
    assert request_id is not None
    assert request_id.startswith("req_")
    assert [reply.outcome for reply in fake.replies] == ["completed"]


async def test_by_default_tokens_are_counted_from_the_request(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    async with sdk.messages.stream(
        model=MODEL, max_tokens=64, system=SYSTEM, messages=HISTORY
    ) as stream:
        message = await stream.get_final_message()
    counted = await sdk.messages.count_tokens(model=MODEL, system=SYSTEM, messages=HISTORY)

    texts = [SYSTEM, "What is the capital of France?", "Paris.", "And of Italy?"]
    assert counted.input_tokens == sum(map(len, texts)) // 4 + 1
    assert message.usage.input_tokens == counted.input_tokens
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello, world!"
    assert message.usage.output_tokens == 4  # one per chunk
    assert message.stop_reason == "end_turn"


async def test_pings_and_an_unknown_event_type_are_tolerated(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(ping_every=1, unknown_event_after=2))
    texts: list[str] = []
    await stream_texts(sdk, texts)
    assert texts == ["Hello", ", ", "world", "!"]

    # The raw stream hands the unknown event on; the SDK builds it as the first class of its
    # event union, so only `.type` tells it apart: dispatch on `.type`, never on the class.
    fake.enqueue(Scenario(unknown_event_after=0))
    raw = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HISTORY, stream=True)
    types = [event.type async for event in raw]
    assert "ping" not in types
    assert types[:3] == ["message_start", "content_block_start", "thinking_budget_update"]
    assert types[-1] == "message_stop"


async def test_a_message_start_with_zero_usage_takes_the_totals_from_message_delta(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(
        Scenario(message_start_without_usage=True, input_tokens=50, cache_read_input_tokens=20)
    )
    async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HISTORY) as stream:
        events = [event async for event in stream]
        message = await stream.get_final_message()

    start = next(event for event in events if event.type == "message_start")
    assert start.message.usage.input_tokens == 0
    assert message.usage.input_tokens == 50
    assert message.usage.cache_read_input_tokens == 20
    assert message.usage.output_tokens == 4


@pytest.mark.parametrize(
    ("scenario", "error_class", "status", "error_type", "message"),
    [
        (Scenario.rate_limited("7"), anthropic.RateLimitError, 429, "rate_limit_error", None),
        (Scenario.overloaded(), anthropic.OverloadedError, 529, "overloaded_error", "Overloaded"),
        (Scenario.server_error(), anthropic.InternalServerError, 500, "api_error", None),
        (
            Scenario.prompt_too_long(),
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            PROMPT_TOO_LONG,
        ),
        (
            Scenario.unauthorized(),
            anthropic.AuthenticationError,
            401,
            "authentication_error",
            "invalid x-api-key",
        ),
    ],
    ids=["429", "529", "500", "400-prompt-too-long", "401"],
)
async def test_an_error_status_raises_the_sdk_class_for_it(
    fake: FakeAnthropic,
    sdk: anthropic.AsyncAnthropic,
    scenario: Scenario,
    error_class: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
    message: str | None,
) -> None:
    fake.enqueue(scenario)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await stream_texts(sdk, [])

    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.type == error_type
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    if message is not None:
        assert error.api_message == message
    if status == 429:
        assert error.response.headers["retry-after"] == "7"


async def test_a_key_the_fake_does_not_accept_is_refused(
    fake: FakeAnthropic, base_url: str
) -> None:
    fake.accepted_keys = {"sk-ant-right"}
    fake.enqueue(Scenario(text_chunks=["kept"]))
    wrong = anthropic.AsyncAnthropic(api_key="sk-ant-wrong", base_url=base_url, max_retries=0)
    right = anthropic.AsyncAnthropic(api_key="sk-ant-right", base_url=base_url, max_retries=0)
    received: list[str] = []
    try:
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await stream_texts(wrong, [])
        await stream_texts(right, received)
    finally:
        await wrong.close()
        await right.close()

    assert received == ["kept"]  # a refused request consumes no scenario
    assert [r.api_key for r in fake.message_requests] == ["sk-ant-wrong", "sk-ant-right"]


async def test_an_error_event_mid_stream_is_overloaded_and_keeps_the_partial_reply(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(error_event_after=2, input_tokens=11, cache_read_input_tokens=5))
    reply = Reply()
    await stream_reply(sdk, reply)

    # The HTTP status was 200: only the event's own error type says overloaded.
    assert reply.error is not None
    assert (reply.error.code, reply.error.retryable) == ("UPSTREAM_OVERLOADED", True)
    assert reply.error.message == "Overloaded"
    assert reply.texts == ["Hello", ", "]
    assert reply.reported is not None
    assert (reply.reported.input_tokens, reply.reported.cache_read_input_tokens) == (11, 5)
    assert fake.replies[0].outcome == "error_event"


async def test_a_dropped_connection_is_a_retryable_connection_failure(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(drop_after=2, input_tokens=11))
    reply = Reply()
    await stream_reply(sdk, reply)

    assert reply.error is not None
    assert (reply.error.code, reply.error.retryable) == ("LLM_ERROR", True)
    # The transport's own words, not only the SDK wrapper's "Connection error."
    assert reply.error.message.startswith("The connection to Anthropic failed: ")
    assert "closed" in reply.error.message
    assert reply.texts == ["Hello", ", "]
    assert reply.reported is not None
    assert reply.reported.input_tokens == 11
    assert fake.replies[0].outcome == "dropped"


async def test_a_stall_mid_stream_is_an_upstream_timeout(
    fake: FakeAnthropic, base_url: str
) -> None:
    fake.enqueue(Scenario(stall_after=1, stall_seconds=30, input_tokens=11))
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0, timeout=0.5)
    reply = Reply()
    started = time.monotonic()
    try:
        await stream_reply(client, reply)
    finally:
        await client.close()

    assert time.monotonic() - started < 1.5
    assert reply.error is not None
    assert (reply.error.code, reply.error.retryable) == ("UPSTREAM_TIMEOUT", True)
    assert reply.texts == ["Hello"]
    assert reply.reported is not None
    assert reply.reported.input_tokens == 11
    assert await fake.wait_for_disconnect(timeout=1.0) < 1.5  # the SDK closed the connection


async def test_a_stall_before_the_response_is_an_upstream_timeout_with_nothing_reported(
    fake: FakeAnthropic, base_url: str
) -> None:
    fake.enqueue(Scenario(delay_before_stream=30))
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0, timeout=0.5)
    reply = Reply()
    try:
        await stream_reply(client, reply)
    finally:
        await client.close()

    assert reply.error is not None
    assert (reply.error.code, reply.error.retryable) == ("UPSTREAM_TIMEOUT", True)
    assert reply.texts == []
    assert reply.reported is None  # so nothing is billed
    assert await fake.wait_for_disconnect(timeout=1.0) < 1.5  # the SDK gave up at 0.5 s


async def test_malformed_event_data_breaks_the_stream_and_keeps_the_partial_reply(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(malformed_after=1, input_tokens=11))
    reply = Reply()
    await stream_reply(sdk, reply)

    assert reply.error is not None
    assert (reply.error.code, reply.error.retryable) == ("LLM_ERROR", True)
    assert reply.error.message.startswith("The stream from Anthropic broke (")
    assert reply.texts == ["Hello"]
    assert reply.reported is not None
    assert reply.reported.input_tokens == 11


@pytest.mark.parametrize(
    ("retry_after", "shortest", "longest"),
    [
        ("0.05", 0.05, 0.3),  # honoured as given
        ("0", 0.3, 0.9),  # not positive, so the SDK's own backoff: 0.5 s less up to 25 % jitter
    ],
)
async def test_the_sdk_retries_an_overloaded_reply_after_retry_after(
    fake: FakeAnthropic, base_url: str, retry_after: str, shortest: float, longest: float
) -> None:
    fake.enqueue(Scenario.overloaded(retry_after=retry_after), Scenario(text_chunks=["ok"]))
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=2)
    received: list[str] = []
    try:
        await stream_texts(client, received)
    finally:
        await client.close()

    assert received == ["ok"]
    first, second = fake.message_requests
    assert shortest <= second.received_at - first.received_at < longest
    assert second.headers["x-stainless-retry-count"] == "1"
    assert [reply.outcome for reply in fake.replies] == ["error_status", "completed"]


async def test_requests_are_recorded_with_the_system_prompt_and_history(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    async with sdk.messages.stream(
        model=MODEL, max_tokens=64, system=SYSTEM, messages=HISTORY
    ) as stream:
        await stream.until_done()

    [request] = fake.message_requests
    assert request.method == "POST"
    assert request.json["system"] == SYSTEM
    assert request.json["messages"] == HISTORY
    assert request.json["model"] == MODEL
    assert request.json["stream"] is True
    assert request.api_key == KEY
    assert "anthropic-version" in request.headers
    assert all(name == name.lower() for name in request.headers)


async def test_a_non_streaming_request_gets_a_whole_message(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(text_chunks=["Ro", "me"], input_tokens=10, output_tokens=2))
    message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HISTORY)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Rome"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 2)
    assert message.stop_reason == "end_turn"


async def test_a_client_closing_an_endless_stream_is_seen_within_a_second(
    fake: FakeAnthropic, sdk: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01))
    received: list[str] = []

    async def consume() -> None:
        await stream_texts(sdk, received)

    task = asyncio.create_task(consume())
    await until(lambda: len(received) >= 5, task)
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await fake.wait_for_disconnect(timeout=1.0) < 1.0
    [reply] = fake.disconnects
    assert reply.outcome == "disconnected"
    assert reply.ended_at is not None
    assert reply.ended_at - cancelled_at < 1.0
    assert reply.chunks_sent >= 5


async def test_shutting_down_ends_a_stalled_stream_at_once() -> None:
    reply = Reply()
    async with running_fake_anthropic() as (fake, base_url):
        fake.enqueue(Scenario(stall_after=1, stall_seconds=60))
        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0)
        task = asyncio.create_task(stream_reply(client, reply))
        await until(lambda: bool(reply.texts), task)
        closing = time.monotonic()
    try:
        assert time.monotonic() - closing < 1.0
        await asyncio.wait_for(task, 1.0)
        assert reply.error is not None
        assert (reply.error.code, reply.error.retryable) == ("LLM_ERROR", True)
        assert reply.texts == ["Hello"]
        assert fake.replies[0].outcome == "released"
        assert fake.disconnects == []
    finally:
        await client.close()


async def test_error_bodies_have_the_api_shape_and_a_request_id(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/messages", json={}) as response:
            unauthorized = (response.status, response.headers, await response.json())
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        async with session.post(
            f"{base_url}/v1/messages", json={"model": MODEL, "messages": []}, headers=headers
        ) as response:
            incomplete = (response.status, await response.json())

    status, response_headers, body = unauthorized
    assert status == 401
    assert response_headers["request-id"].startswith("req_")
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": response_headers["request-id"],
    }
    assert incomplete[0] == 400
    assert incomplete[1]["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


async def test_the_fake_runs_as_its_own_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("fake_anthropic.py")),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert line.startswith("listening on http://127.0.0.1:")
        base_url = line.removeprefix("listening on ").strip()
        async with aiohttp.ClientSession() as session:
            scenarios = [{"text_chunks": ["from", " afar"], "input_tokens": 3}]
            async with session.post(f"{base_url}/_fake/scenarios", json=scenarios) as response:
                assert response.status == 200
            client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0)
            received: list[str] = []
            try:
                await stream_texts(client, received)
            finally:
                await client.close()
            async with session.get(f"{base_url}/_fake/requests") as response:
                recorded = await response.json()
        assert received == ["from", " afar"]
        assert recorded[0]["json"]["messages"] == HISTORY
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 5) == 0
