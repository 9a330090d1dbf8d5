"""The chat's Messages request is sent without the SDK; what it makes of each answer must be
what the SDK's errors made of it (``upstream_error``), on the same fake, for the same reply."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from agentspace_gateway.config import AnthropicConfig
from agentspace_gateway.llm.anthropic_stream import anthropic_events
from agentspace_gateway.llm.client import AnthropicClients
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.metering.events import Failed, StreamEvent, TextStreamed
from agentspace_gateway.protocol.errors import GatewayError

from fake_anthropic import FakeAnthropic, Scenario, running_fake_anthropic

KEY = "sk-ant-api03-the-chats-own-request-dddd"
PARAMS: dict[str, Any] = {
    "model": "claude-fake-1",
    "max_tokens": 64,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "And of Italy?"}],
}


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    async with running_fake_anthropic() as running:
        yield running


@pytest.fixture
async def clients(
    fake_anthropic: tuple[FakeAnthropic, str], upstream_pool: aiohttp.ClientSession
) -> AsyncIterator[AnthropicClients]:
    clients = AnthropicClients(
        None,
        AnthropicConfig(base_url=fake_anthropic[1]),
        {"ANTHROPIC_API_KEY": KEY},
        session=upstream_pool,
    )
    yield clients
    await clients.close()


async def chat_events(clients: AnthropicClients) -> list[StreamEvent]:
    target = await clients.messages_target()
    return [event async for event in anthropic_events(target, PARAMS)]


async def sdk_error(clients: AnthropicClients) -> GatewayError:
    """The same request through the SDK, its failure as the gateway maps the SDK's errors."""
    client = await clients.client()
    try:
        async with client.messages.stream(**PARAMS) as stream:
            async for _ in stream:
                pass
    except anthropic.APIError as error:
        return upstream_error(error)
    raise AssertionError("the SDK's request did not fail")


def as_tuple(error: GatewayError) -> tuple[object, ...]:
    return (error.code, error.message, error.retryable, error.retry_after_ms)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario.prompt_too_long(),
        Scenario.unauthorized(),
        Scenario.error(403),
        Scenario.error(404),
        Scenario.error(413),
        Scenario.rate_limited("7"),
        Scenario.rate_limited(None),
        Scenario.server_error(),
        Scenario.overloaded("2"),
        Scenario.error(503),
        Scenario.error(400, "bad field", error_type="invalid_request_error"),
        Scenario(error_event_after=1),
    ],
    ids=[
        "400-too-long",
        "401",
        "403",
        "404",
        "413",
        "429-retry-after",
        "429",
        "500",
        "529-retry-after",
        "503",
        "400-other",
        "error-event",
    ],
)
async def test_each_failure_maps_as_the_sdks_error_for_it_did(
    fake_anthropic: tuple[FakeAnthropic, str], clients: AnthropicClients, scenario: Scenario
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(scenario)
    events = await chat_events(clients)
    fake.enqueue(scenario)
    expected = await sdk_error(clients)

    last = events[-1]
    assert isinstance(last, Failed)
    assert as_tuple(last.error) == as_tuple(expected)
    assert [type(event) for event in events].count(Failed) == 1


async def test_the_request_carries_the_key_the_version_and_asks_for_a_stream(
    fake_anthropic: tuple[FakeAnthropic, str], clients: AnthropicClients
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["Ro", "me."]))
    events = await chat_events(clients)

    assert [event.text for event in events if isinstance(event, TextStreamed)] == ["Ro", "me."]
    (sent,) = fake.message_requests
    assert sent.api_key == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json == {**PARAMS, "stream": True}
