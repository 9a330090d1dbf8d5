"""Budgets as the doors' tests see them: set through the app's budget room, read back as
standings, reservations and the ledger, straight from the database."""

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_openai import FakeOpenAI, running_fake_openai

from agentspace_gateway.config import AnthropicConfig, Config, ProviderConfig
from agentspace_gateway.home import Home
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.storage.budgets import Standing

from proxy_helpers import PROVIDER_KEY

OPENAI_KEY = "sk-provider-key-for-the-fake-openai"

App = TestClient[web.Request, web.Application]


async def set_budget(
    client: App,
    limit_nanousd: int,
    *,
    scope_kind: str = "global",
    scope_id: str = "",
    period: str = "total",
    clip: bool = False,
) -> None:
    await client.app[BUDGETS].store.set(
        scope_kind, scope_id, period, limit_nanousd, clip_max_tokens=clip
    )


async def standings(client: App) -> list[Standing]:
    return await client.app[BUDGETS].store.standings(datetime.now(UTC))


def rows(home: Home, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return list(connection.execute(sql, params))


def open_reservations(home: Home) -> int:
    [row] = rows(home, "SELECT count(*) FROM budget_reservations WHERE state = 'open'")
    return int(row[0])


def ledger_nanousd(home: Home) -> int:
    [row] = rows(home, "SELECT coalesce(sum(cost_nanousd), 0) FROM usage_records")
    return int(row[0])


def usage_count(home: Home) -> int:
    [row] = rows(home, "SELECT count(*) FROM usage_records")
    return int(row[0])


class Attempts:
    """The SDK's own HTTP attempts, counted at its transport: a retry is a second attempt."""

    def __init__(self) -> None:
        self.count = 0

    def openai_client(self) -> httpx.AsyncClient:
        attempts = self

        class Counting(httpx.AsyncHTTPTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                attempts.count += 1
                return await super().handle_async_request(request)

        return httpx.AsyncClient(transport=Counting())

    def anthropic_client(self) -> httpx2.AsyncClient:
        # The anthropic SDK runs on httpx2 (it refuses httpx objects).
        attempts = self

        class Counting(httpx2.AsyncHTTPTransport):
            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                attempts.count += 1
                return await super().handle_async_request(request)

        return httpx2.AsyncClient(transport=Counting())


@pytest.fixture(name="fake_openai")
async def fake_openai_fixture() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    async with running_fake_openai(FakeOpenAI({OPENAI_KEY})) as running:
        yield running


@pytest.fixture(name="gateway")
async def gateway_fixture(make_client, fake_anthropic, fake_openai, monkeypatch) -> App:  # type: ignore[no-untyped-def]
    """Both HTTP doors and the WebSocket, to the fake Anthropic and the fake OpenAI."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    providers = {
        "openai": ProviderConfig(kind="openai", base_url=fake_openai[1], key="env:OPENAI_API_KEY")
    }
    anthropic_config = AnthropicConfig(base_url=fake_anthropic[1], max_retries=0)
    return await make_client(Config(anthropic=anthropic_config, providers=providers))  # type: ignore[no-any-return]


def anthropic_sdk(client: App, secret: str, attempts: Attempts) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=secret,
        base_url=str(client.make_url("")).rstrip("/"),
        max_retries=3,
        http_client=attempts.anthropic_client(),
    )


def openai_sdk(client: App, secret: str, attempts: Attempts) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=secret,
        base_url=str(client.make_url("/v1")),
        max_retries=3,
        http_client=attempts.openai_client(),
    )
