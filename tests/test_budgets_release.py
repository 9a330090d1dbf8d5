"""Every reservation is released once its request's usage row is written, however the
request ended (its end, an upstream failure, a cancel, a client that left), in every door:
then no reservation is open and a budget's spend is exactly the ledger's."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import anthropic
import openai
import pytest
from budgets_helpers import (
    App,
    Attempts,
    anthropic_sdk,
    fake_openai_fixture,  # noqa: F401 - the fixture
    gateway_fixture,  # noqa: F401 - the fixture
    ledger_nanousd,
    open_reservations,
    openai_sdk,
    rows,
    set_budget,
    standings,
    usage_count,
)
from fake_openai import FakeOpenAI
from fake_openai import Scenario as OpenAIScenario

from agentspace_gateway.home import Home
from agentspace_gateway.storage import Database
from agentspace_gateway.storage.budgets import BudgetStore, Scope
from agentspace_gateway.storage.migrator import apply_migrations

from chat_helpers import send_chat, stream_started, until_end
from conftest import TEST_API_KEY
from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import MODEL, issue
from wsclient import request

HI: Any = [{"role": "user", "content": "hi"}]
BUDGET = 10**12  # $1,000: room for everything here
Fakes = tuple[FakeAnthropic, FakeOpenAI]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """The gateway releases after it answers: the client may see the end first."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


async def assert_all_released(client: App, home: Home, requests: int) -> None:
    await until(lambda: open_reservations(home) == 0)
    [settled] = rows(home, "SELECT count(*) FROM budget_reservations WHERE state = 'settled'")
    assert settled[0] == requests
    [standing] = await standings(client)
    assert standing.reserved_nanousd == 0
    assert standing.spent_nanousd == ledger_nanousd(home)


async def anthropic_stream(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(text_chunks=["Hel", "lo"], input_tokens=40, output_tokens=7))
    key = await issue(client, "laptop")
    sdk = anthropic_sdk(client, key.secret, Attempts())
    async with sdk, sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        assert await stream.get_final_text() == "Hello"


async def anthropic_whole(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(text_chunks=["Hi"], input_tokens=40, output_tokens=7))
    key = await issue(client, "laptop")
    async with anthropic_sdk(client, key.secret, Attempts()) as sdk:
        await sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)


async def anthropic_upstream_error(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(*[Scenario.error(500)] * 4)
    key = await issue(client, "laptop")
    async with anthropic_sdk(client, key.secret, Attempts()) as sdk:
        with pytest.raises(anthropic.InternalServerError):
            await sdk.with_options(max_retries=0).messages.create(
                model=MODEL, max_tokens=64, messages=HI
            )


async def anthropic_client_gone(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=33))
    key = await issue(client, "laptop")
    body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": HI}
    headers = {"x-api-key": key.secret, "anthropic-version": "2023-06-01"}
    response = await client.post("/v1/messages", json=body, headers=headers)
    await response.content.readuntil(b"content_block_delta")
    response.close()
    await fakes[0].wait_for_disconnect(timeout=5.0)


async def openai_passthrough_stream(client: App, fakes: Fakes, home: Home) -> None:
    fakes[1].enqueue(OpenAIScenario(text_chunks=["Hi", " there"]))
    key = await issue(client, "aider")
    async with openai_sdk(client, key.secret, Attempts()) as sdk:
        stream = await sdk.chat.completions.create(
            model="openai/gpt-4.1", messages=HI, stream=True, max_tokens=64
        )
        async for _ in stream:
            pass


async def openai_passthrough_error(client: App, fakes: Fakes, home: Home) -> None:
    fakes[1].enqueue(OpenAIScenario.error(500))
    key = await issue(client, "aider")
    async with openai_sdk(client, key.secret, Attempts()) as sdk:
        with pytest.raises(openai.InternalServerError):
            await sdk.with_options(max_retries=0).chat.completions.create(
                model="openai/gpt-4.1", messages=HI
            )


async def openai_passthrough_client_gone(client: App, fakes: Fakes, home: Home) -> None:
    fakes[1].enqueue(OpenAIScenario(text_chunks=["x"] * 400, chunk_delay=0.01))
    key = await issue(client, "aider")
    body = {"model": "openai/gpt-4.1", "stream": True, "messages": HI}
    headers = {"Authorization": f"Bearer {key.secret}"}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    await response.content.readuntil(b"data:")
    response.close()


async def openai_translated(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(text_chunks=["Hi"], input_tokens=40, output_tokens=7))
    key = await issue(client, "aider")
    async with openai_sdk(client, key.secret, Attempts()) as sdk:
        stream = await sdk.chat.completions.create(
            model=MODEL, messages=HI, stream=True, max_tokens=64
        )
        async for _ in stream:
            pass


async def websocket_reply(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(text_chunks=["Hi"], input_tokens=40, output_tokens=7))
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL)
    assert frames[-1]["type"] == "chat.stream.end"


async def websocket_upstream_error(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(*[Scenario.error(500)] * 4)
    async with client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL)
    assert frames[-1]["type"] == "error"


async def websocket_cancel(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=21))
    async with client.ws_connect("/gateway") as ws:
        await stream_started(ws, "t1", "hello")
        await request(ws, {"type": "chat.cancel", "id": "c1", "requestId": "t1"})
        frames = await until_end(ws, "t1")
    assert frames[-1]["stopReason"] == "cancelled"


async def websocket_client_gone(client: App, fakes: Fakes, home: Home) -> None:
    fakes[0].enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=21))
    async with client.ws_connect("/gateway") as ws:
        await stream_started(ws, "t1", "hello")
    await fakes[0].wait_for_disconnect(timeout=5.0)


ENDINGS: dict[str, Callable[[App, Fakes, Home], Awaitable[None]]] = {
    f.__name__: f
    for f in (
        anthropic_stream,
        anthropic_whole,
        anthropic_upstream_error,
        anthropic_client_gone,
        openai_passthrough_stream,
        openai_passthrough_error,
        openai_passthrough_client_gone,
        openai_translated,
        websocket_reply,
        websocket_upstream_error,
        websocket_cancel,
        websocket_client_gone,
    )
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_the_reservation_is_released_and_spend_is_the_ledger(
    gateway: App,
    fake_anthropic: tuple[FakeAnthropic, str],
    fake_openai: tuple[FakeOpenAI, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    ending: str,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)  # the chat reads it per request
    await set_budget(gateway, BUDGET)
    await ENDINGS[ending](gateway, (fake_anthropic[0], fake_openai[0]), home)
    await assert_all_released(gateway, home, 1)
    if ending.endswith(("_stream", "_whole", "_reply", "_translated", "_gone", "_cancel")):
        # Tokens went upstream and were billed: the spend is theirs, to the nano-dollar.
        assert usage_count(home) == 1
        assert ledger_nanousd(home) > 0


async def test_reservations_a_dead_process_left_are_settled_before_the_app_serves(
    make_client: Any, home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    home.ensure()
    database = await Database.open(home.database)
    try:
        await apply_migrations(database)
        store = BudgetStore(database, ZoneInfo("UTC"))
        await store.set("global", "", "total", 1000)
        now = datetime.now(UTC)
        await store.reserve(Scope(), "left-1", "m", 600, now)
        await store.reserve(Scope(), "left-2", "m", 300, now)
        [held] = await store.standings(now)
        assert held.reserved_nanousd == 900
    finally:
        await database.close()

    with caplog.at_level(logging.WARNING, "agentspace_gateway.metering.budget_setup"):
        client = await make_client()
    assert open_reservations(home) == 0
    [standing] = await standings(client)
    assert (standing.spent_nanousd, standing.reserved_nanousd) == (0, 0)
    assert "settled 2 reservation(s) a stopped gateway left open" in caplog.text
