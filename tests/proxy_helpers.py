"""The gateway pointed at the fake upstream with a client key, for the proxy tests."""

import sqlite3
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway import appkeys
from agentspace_gateway.config import AnthropicConfig, Config, ProxyConfig
from agentspace_gateway.home import Home
from agentspace_gateway.storage.client_keys import ClientKeyRepository, IssuedKey

from fake_anthropic import FakeAnthropic

PROVIDER_KEY = "sk-ant-api03-provider-key-for-the-fake-upstream"
MODEL = "claude-sonnet-4-5"
# claude-sonnet-4-5 at genai-prices' list prices, in nano-dollars per token: $3/MTok input,
# $15/MTok output, $0.30/MTok cache read, $3.75/MTok cache write (5 minutes).
INPUT_NANOS, OUTPUT_NANOS, CACHE_READ_NANOS, CACHE_WRITE_NANOS = 3000, 15000, 300, 3750


@attrs.frozen
class Proxied:
    client: TestClient[web.Request, web.Application]
    fake: FakeAnthropic
    key: IssuedKey
    home: Home

    @property
    def fake_url(self) -> str:
        return self.client.app[appkeys.CONFIG].anthropic.base_url

    @property
    def base_url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with sqlite3.connect(self.home.database) as connection:
            connection.row_factory = sqlite3.Row
            return list(connection.execute(sql, params))

    def usage_row(self, request_id: str) -> sqlite3.Row:
        (row,) = self.rows("SELECT * FROM usage_records WHERE request_id = ?", (request_id,))
        return row


def proxy_config(base_url: str, **proxy: Any) -> Config:
    return Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0, timeout_seconds=5.0),
        proxy=ProxyConfig(**proxy),
    )


async def issue(client: TestClient[web.Request, web.Application], name: str) -> IssuedKey:
    return await ClientKeyRepository(client.app[appkeys.DATABASE]).issue(name)
