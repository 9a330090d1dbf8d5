"""An OpenAI stream cut before its usage chunk (the upstream dies, or the client leaves),
through the real openai SDK and the gateway to the fake OpenAI upstream: billed on the
gateway's estimates, the row flagged ``output_estimated``, never left unbilled."""

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import attrs
import openai
import pytest
from fake_openai import FakeOpenAI, Scenario, running_fake_openai

from agentspace_gateway.config import Config, ProviderConfig
from agentspace_gateway.home import Home
from agentspace_gateway.storage.usage import IN_PROGRESS
from agentspace_gateway.tokens import TokenEstimator

from chat_helpers import eventually
from proxy_helpers import issue

PROVIDER_KEY = "sk-provider-key-for-the-fake-openai"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the world"}]
# gpt-4.1, nano-dollars a token.
INPUT_PRICE, OUTPUT_PRICE = 2_000, 8_000


@attrs.frozen
class Door:
    sdk: openai.AsyncOpenAI
    upstream: FakeOpenAI


@pytest.fixture
async def door(make_client, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Door]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    async with running_fake_openai(FakeOpenAI({PROVIDER_KEY})) as (upstream, base_url):
        provider = ProviderConfig(kind="openai", base_url=base_url, key="env:OPENAI_API_KEY")
        client = await make_client(Config(providers={"openai": provider}))
        key = await issue(client, "aider")
        base = str(client.make_url("/v1"))
        async with openai.AsyncOpenAI(api_key=key.secret, base_url=base, max_retries=0) as sdk:
            yield Door(sdk, upstream)


def settled_rows(home: Home) -> list[sqlite3.Row]:
    """Usage rows whose stream has ended (the row opened as text first comes has no stop
    reason yet, or IN_PROGRESS while its running estimate is written)."""
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        query = "SELECT * FROM usage_records WHERE stop_reason NOT IN (?) ORDER BY id"
        return list(connection.execute(query, (IN_PROGRESS,)))


def assert_billed_on_estimates(row: sqlite3.Row, streamed: str) -> None:
    assert row["output_estimated"] == 1
    assert row["output_tokens"] == TokenEstimator().count(streamed) > 0
    # No usage came: the input side is the gateway's own estimate of the prompt.
    assert row["estimated_input_tokens"] > 0
    assert row["input_tokens"] == row["estimated_input_tokens"]
    expected = row["input_tokens"] * INPUT_PRICE + row["output_tokens"] * OUTPUT_PRICE
    assert row["cost_nanousd"] == expected


async def test_an_upstream_cut_before_the_usage_chunk_is_billed_an_estimate(
    door: Door, home: Home
) -> None:
    door.upstream.enqueue(Scenario(text_chunks=["Hello", " there,", " world"], cut_after=2))
    received: list[str] = []

    async def read_all() -> None:
        stream = await door.sdk.chat.completions.create(
            model="openai/gpt-4.1", messages=MESSAGES, stream=True
        )
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError):
        await read_all()
    assert "".join(received) == "Hello there,"
    await eventually(lambda: settled_rows(home))
    [row] = settled_rows(home)
    assert row["stop_reason"] == "upstream_failed"
    assert_billed_on_estimates(row, "Hello there,")


async def test_a_client_gone_before_the_usage_chunk_is_billed_an_estimate(
    door: Door, home: Home
) -> None:
    door.upstream.enqueue(Scenario(text_chunks=["word "] * 200, chunk_delay=0.02))
    received: list[str] = []
    stream = await door.sdk.chat.completions.create(
        model="openai/gpt-4.1", messages=MESSAGES, stream=True
    )
    async for chunk in stream:
        received.append(chunk.choices[0].delta.content or "")
        if len(received) == 4:  # the role chunk and three words
            break
    await stream.close()  # the client leaves mid-stream
    await eventually(lambda: settled_rows(home))
    [row] = settled_rows(home)
    assert row["stop_reason"] == "client_gone"
    # What the gateway relayed before it saw the client go: at least what the client read.
    streamed = row["output_tokens"]
    assert streamed >= TokenEstimator().count("".join(received))
    assert row["output_estimated"] == 1
    assert row["input_tokens"] == row["estimated_input_tokens"] > 0
    assert row["cost_nanousd"] == row["input_tokens"] * INPUT_PRICE + streamed * OUTPUT_PRICE
    assert door.upstream.outcomes == []  # the upstream stream was closed, not run to its end
