"""The real openai SDK through the gateway's OpenAI API to the fake OpenAI upstream: what
reached the upstream (its key, never the client's; the usage chunk asked for), what the
client got, and the ledger row to the nano-dollar."""

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_openai import FakeOpenAI, Scenario, running_fake_openai

from agentspace_gateway import appkeys
from agentspace_gateway.config import Config, ProviderConfig, ProxyConfig
from agentspace_gateway.home import Home
from agentspace_gateway.storage.client_keys import ClientKeyRepository, IssuedKey
from agentspace_gateway.storage.usage import IN_PROGRESS

from chat_helpers import eventually
from proxy_helpers import issue

Fake = tuple[FakeOpenAI, str]
PROVIDER_KEY = "sk-provider-key-for-the-fake-openai"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the world"}]
# "Say hello to the world" is 22 characters: 22 // 4 + 1 = 6 prompt tokens.
PROMPT = 6


class Door:
    def __init__(self, client: TestClient[web.Request, web.Application], key: IssuedKey) -> None:
        self.client = client
        self.key = key

    def sdk(self, secret: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=secret or self.key.secret,
            base_url=str(self.client.make_url("/v1")),
            max_retries=0,
        )


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    async with running_fake_openai(FakeOpenAI({PROVIDER_KEY})) as running:
        yield running


@pytest.fixture
async def door(make_client, fake, monkeypatch: pytest.MonkeyPatch) -> Door:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    _, base_url = fake
    providers = {
        "openai": ProviderConfig(kind="openai", base_url=base_url, key="env:OPENAI_API_KEY")
    }
    client = await make_client(Config(providers=providers))
    return Door(client, await issue(client, "aider"))


def usage_rows(home: Home) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return list(connection.execute("SELECT * FROM usage_records ORDER BY id"))


async def settled_row(home: Home) -> sqlite3.Row:
    """The one usage row, once settled: it is opened as the reply starts (stop reason
    IN_PROGRESS) and settled as it ends, which the client may see first."""
    await eventually(lambda: [r for r in usage_rows(home) if r["stop_reason"] != IN_PROGRESS])
    [row] = usage_rows(home)
    return row


async def test_a_stream_is_relayed_and_billed_to_the_nano_dollar(
    door: Door, fake: Fake, home: Home
) -> None:
    upstream, _ = fake
    upstream.enqueue(Scenario(text_chunks=["Hi", " there"], cached_tokens=8))
    async with door.sdk() as client:
        stream = await client.chat.completions.create(
            model="openai/gpt-4.1", messages=MESSAGES, stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hi there"
    # The client did not ask for usage: the usage chunk the gateway asked for is not relayed.
    assert all(chunk.choices for chunk in chunks)
    [sent] = upstream.requests
    assert sent.api_key == PROVIDER_KEY
    assert door.key.secret not in str(sent.headers)
    assert sent.body["model"] == "gpt-4.1"
    assert sent.body["stream_options"] == {"include_usage": True}
    row = await settled_row(home)
    assert row["model"] == "openai/gpt-4.1"
    assert (row["input_tokens"], row["cache_read_input_tokens"], row["output_tokens"]) == (
        PROMPT,
        8,
        2,
    )
    # gpt-4.1: 6 x 2000 + 8 x 500 + 2 x 8000 nano-dollars.
    assert row["cost_nanousd"] == 12_000 + 4_000 + 16_000
    # Billed to the client key that sent it, like the Anthropic door's rows.
    assert row["client_key_id"] == door.key.client.id
    assert row["stop_reason"] == "end_turn"


async def test_a_client_that_asks_for_usage_gets_the_usage_chunk(
    door: Door, fake: Fake, home: Home
) -> None:
    async with door.sdk() as client:
        stream = await client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT, 4)
    row = await settled_row(home)
    # gpt-4o-mini: $0.15 in, $0.6 out per MTok: 6 x 150 + 4 x 600.
    assert row["cost_nanousd"] == 900 + 2_400


async def test_a_reply_that_is_not_streamed_is_billed(door: Door, fake: Fake, home: Home) -> None:
    async with door.sdk() as client:
        reply = await client.chat.completions.create(model="openai/gpt-4.1", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello, world!"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == PROMPT
    row = await settled_row(home)
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanousd"]) == (
        PROMPT,
        4,
        12_000 + 32_000,
    )
    # The gateway's own estimate of the prompt ("Say hello to the world": five words).
    assert 4 <= row["estimated_input_tokens"] <= 8


async def test_a_wrong_client_key_is_refused_in_openais_envelope(door: Door, fake: Fake) -> None:
    upstream, _ = fake
    async with door.sdk("sk-not-a-gateway-key") as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.chat.completions.create(model="openai/gpt-4.1", messages=MESSAGES)
    assert raised.value.code == "invalid_api_key"
    assert "Invalid client key" in raised.value.message
    assert upstream.requests == []


async def test_a_model_no_provider_serves_is_a_404_naming_the_providers(door: Door) -> None:
    async with door.sdk() as client:
        with pytest.raises(openai.NotFoundError) as raised:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert raised.value.code == "model_not_found"
    assert "anthropic, ollama, openai" in raised.value.message


async def test_an_upstream_error_is_relayed_and_nothing_billed(
    door: Door, fake: Fake, home: Home
) -> None:
    upstream, _ = fake
    upstream.enqueue(Scenario.error(429, retry_after="2"))
    async with door.sdk() as client:
        with pytest.raises(openai.RateLimitError) as raised:
            await client.chat.completions.create(model="openai/gpt-4.1", messages=MESSAGES)
    assert raised.value.response.headers["retry-after"] == "2"
    assert usage_rows(home) == []


async def test_models_in_openais_shape_and_anthropics(door: Door) -> None:
    async with door.sdk() as client:
        page = await client.models.list()
    ids = [model.id for model in page.data]
    assert "openai/gpt-4.1" in ids
    assert "claude-sonnet-4-5" in ids
    assert all(model.object == "model" for model in page.data)
    headers = {"x-api-key": door.key.secret, "anthropic-version": "2023-06-01"}
    url = door.client.make_url("/v1/models")
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        anthropic_shape = await response.json()
    assert "has_more" in anthropic_shape
    assert anthropic_shape["data"][0]["type"] == "model"


async def test_a_cut_stream_ends_with_an_error_the_sdk_raises(door: Door, fake: Fake) -> None:
    upstream, _ = fake
    upstream.enqueue(Scenario(cut_after=2))
    received: list[str] = []

    async def read_all() -> None:
        async with door.sdk() as client:
            stream = await client.chat.completions.create(
                model="openai/gpt-4.1", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as raised:
        await read_all()
    assert "ended before it was complete" in raised.value.message
    assert "".join(received) == "Hello, "


async def test_revoking_the_client_key_closes_its_open_stream(  # type: ignore[no-untyped-def]
    make_client, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    upstream, base_url = fake
    provider = ProviderConfig(kind="openai", base_url=base_url, key="env:OPENAI_API_KEY")
    config = Config(providers={"openai": provider}, proxy=ProxyConfig(key_check_seconds=0.05))
    client = await make_client(config)
    door = Door(client, await issue(client, "aider"))
    upstream.enqueue(Scenario(text_chunks=["a"] * 200, chunk_delay=0.02))
    received: list[str] = []

    async def read_all() -> None:
        async with door.sdk() as sdk:
            stream = await sdk.chat.completions.create(
                model="openai/gpt-4.1", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
                if len(received) == 3:
                    await ClientKeyRepository(client.app[appkeys.DATABASE]).revoke("aider")

    with pytest.raises(openai.APIError) as raised:
        await read_all()
    assert "client_key_revoked" in raised.value.message
    assert 3 <= len(received) < 200
    assert upstream.outcomes == []  # the upstream request was closed before its end


async def test_models_include_what_a_local_server_has(  # type: ignore[no-untyped-def]
    make_client, fake: Fake
) -> None:
    _, base_url = fake
    lab = ProviderConfig(kind="openai", base_url=base_url, key="none")
    client = await make_client(Config(providers={"lab": lab}, models={"fast": "lab/fake-model"}))
    door = Door(client, await issue(client, "webui"))
    async with door.sdk() as sdk:
        page = await sdk.models.list()
    ids = [model.id for model in page.data]
    assert "lab/fake-model" in ids  # from the local server's own list
    assert "fast" in ids  # the alias
    # Ollama (built in) is not running here: it adds nothing, and holds nothing up.
    assert not any(model_id.startswith("ollama/") for model_id in ids)
