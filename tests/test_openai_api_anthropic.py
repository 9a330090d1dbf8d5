"""The real openai SDK through the gateway's OpenAI API to Anthropic models: the request
translated (checked at the fake Anthropic upstream), the reply translated back, streaming
and not, a tool-call round trip, and the ledger row to the nano-dollar."""

import json
import sqlite3
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway import appkeys
from agentspace_gateway.home import Home
from agentspace_gateway.storage.client_keys import ClientKeyRepository, IssuedKey

from chat_helpers import eventually
from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import PROVIDER_KEY, issue, proxy_config

MODEL = "claude-sonnet-4-5"  # $3 input, $15 output, $0.3 cache reads per MTok
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


class Door:
    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        key: IssuedKey,
        fake: FakeAnthropic,
        home: Home,
    ) -> None:
        self.client, self.key, self.fake, self.home = client, key, fake, home

    def sdk(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.key.secret, base_url=str(self.client.make_url("/v1")), max_retries=0
        )

    def sent(self) -> Any:
        return self.fake.message_requests[-1].json

    async def row(self) -> sqlite3.Row:
        def rows() -> list[sqlite3.Row]:
            with sqlite3.connect(self.home.database) as connection:
                connection.row_factory = sqlite3.Row
                return list(connection.execute("SELECT * FROM usage_records ORDER BY id"))

        # Opened (in_progress) at the first usage report; settled as the reply ends.
        await eventually(lambda: [r for r in rows() if r["stop_reason"] != "in_progress"])
        [row] = rows()
        return row


@pytest.fixture
async def door(make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch) -> Door:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url))
    return Door(client, await issue(client, "tool"), fake, home)


async def test_text_with_system_and_parameters_not_streamed(door: Door) -> None:
    door.fake.enqueue(
        Scenario(
            text_chunks=["Hi", "!"],
            input_tokens=1000,
            output_tokens=20,
            cache_read_input_tokens=500,
        )
    )
    async with door.sdk() as client:
        reply = await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
            ],
            max_completion_tokens=64,
            temperature=0.5,
            top_p=0.9,
            stop=["END"],
        )
    assert reply.choices[0].message.content == "Hi!"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1500, 20)
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 500
    sent = door.sent()
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (64, 0.5, 0.9)
    assert sent["stop_sequences"] == ["END"]
    row = await door.row()
    assert row["model"] == MODEL
    # 1000 x 3000 + 500 x 300 + 20 x 15000 nano-dollars.
    assert row["cost_nanousd"] == 3_000_000 + 150_000 + 300_000


async def test_a_stream_with_the_usage_chunk(door: Door) -> None:
    door.fake.enqueue(Scenario(text_chunks=["Hel", "lo"], input_tokens=100, output_tokens=2))
    async with door.sdk() as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 2, 102)
    row = await door.row()
    assert row["cost_nanousd"] == 100 * 3000 + 2 * 15000


async def test_a_tool_call_round_trip(door: Door) -> None:
    call = {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "get_weather",
        "input_json": ['{"city"', ': "Oslo"}'],
    }
    door.fake.enqueue(
        Scenario(
            text_chunks=["Let me look."],
            blocks=[call],
            stop_reason="tool_use",
            input_tokens=50,
            output_tokens=10,
        )
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    async with door.sdk() as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, tool_choice="auto", stream=True
        )
        chunks = [chunk async for chunk in stream]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "toolu_01"
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    sent = door.sent()
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}

    door.fake.enqueue(Scenario(text_chunks=["Sunny."]))
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01", "content": "Sunny, 21 C"},
    ]
    async with door.sdk() as client:
        reply = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert reply.choices[0].message.content == "Sunny."
    sent = door.sent()
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}}
        ],
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny, 21 C"}],
    }


async def test_an_image_is_translated(door: Door) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with door.sdk() as client:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}]
        )
    assert door.sent()["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 2}, "n"),
        ({"temperature": 1.5}, "temperature"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
    ],
)
async def test_what_cannot_be_translated_is_refused_naming_the_field(
    door: Door, extra: dict[str, Any], param: str
) -> None:
    async with door.sdk() as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Hi"}], extra_body=extra
            )
    assert raised.value.param == param
    assert param in raised.value.message
    assert door.fake.message_requests == []


async def test_revoking_the_client_key_closes_a_translated_stream_billed(  # type: ignore[no-untyped-def]
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url, key_check_seconds=0.05))
    door = Door(client, await issue(client, "tool"), fake, home)
    fake.enqueue(Scenario(text_chunks=["a"] * 200, delay_between_chunks=0.02, input_tokens=100))
    received: list[str] = []

    async def read_all() -> None:
        async with door.sdk() as sdk:
            stream = await sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
            )
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
                if len(received) == 3:
                    await ClientKeyRepository(client.app[appkeys.DATABASE]).revoke("tool")

    with pytest.raises(openai.APIError) as raised:
        await read_all()
    assert "client_key_revoked" in raised.value.message
    assert len(received) < 200
    row = await door.row()
    assert row["stop_reason"] == "client_key_revoked"
    assert row["input_tokens"] == 100
    # Every token Anthropic reported before the close is billed: 100 input at $3 per MTok,
    # plus the output counted so far at $15.
    assert row["cost_nanousd"] == 100 * 3000 + row["output_tokens"] * 15000
