"""Budgets as the doors' tests see them: set through the app's budget room, read back as
standings, reservations and the ledger, straight from the database."""

import sqlite3
from datetime import UTC, datetime
from typing import Any

import httpx
import httpx2
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway.home import Home
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.storage.budgets import Standing

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
