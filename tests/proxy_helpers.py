"""The gateway pointed at the fake upstream with a client key, for the proxy tests."""

import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway import appkeys
from agentspace_gateway.config import AnthropicConfig, Config, ProxyConfig
from agentspace_gateway.home import Home
from agentspace_gateway.proxy.routes import PROXY
from agentspace_gateway.storage.client_keys import ClientKeyRepository, IssuedKey

from fake_anthropic import FakeAnthropic, Scenario

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


async def proxied_gateway(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
    client_name: str = "laptop",
) -> Proxied:
    """The test gateway forwarding to the fake upstream, with a client key issued."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url))
    return Proxied(client, fake, await issue(client, client_name), home)


async def send_message(proxied: Proxied, key: str, **headers: str) -> str:
    """One small request through the Anthropic door; the gateway's request id."""
    proxied.fake.enqueue(Scenario(input_tokens=10, output_tokens=2))
    response = await proxied.client.post(
        "/v1/messages",
        json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", **headers},
    )
    assert response.status == 200
    return response.headers["x-agentspace-request-id"]


async def audit_events(proxied: Proxied) -> list[tuple[str, str | None]]:
    """The audit log's events and details, oldest first, once the rows being written are in."""
    await proxied.client.app[PROXY].auth.flush()
    rows = proxied.rows("SELECT event, detail FROM audit_log ORDER BY id")
    return [(row["event"], row["detail"]) for row in rows]


async def kept_files(proxied: Proxied) -> list[Path]:
    """The kept request bodies, once the bodies being written are in."""
    await proxied.client.app[PROXY].kept.flush()
    return sorted((proxied.home.root / "proxy-requests").glob("*/*.json.gz"))
