"""The app's one upstream HTTP pool: the door, the chat's and the OpenAI-kind providers'
clients all send on it, and only the app closes it."""

from typing import Any

import aiohttp
import pytest

from agentspace_gateway.config import AnthropicConfig
from agentspace_gateway.home import Home
from agentspace_gateway.llm.client import AnthropicClients
from agentspace_gateway.llm.openai_client import OpenAIClients
from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.upstream_http import UPSTREAM_HTTP
from agentspace_gateway.proxy.routes import PROXY

from chat_helpers import send_chat
from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import PROVIDER_KEY, proxied_gateway, send_message

CONFIG = AnthropicConfig(base_url="http://127.0.0.1:9", timeout_seconds=7.0)


async def test_the_door_sends_on_the_app_pool_which_closes_with_the_app(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    pool = proxied.client.app[UPSTREAM_HTTP]
    assert proxied.client.app[PROXY].upstream.session is pool
    for _ in range(2):
        await send_message(proxied, proxied.key.secret)
    assert len(proxied.fake.message_requests) == 2
    assert not pool.closed
    await proxied.client.close()
    assert pool.closed


async def test_the_chat_and_the_door_reuse_one_upstream_connection(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One pool: after a WebSocket chat, the door's request goes on the connection the chat
    opened (the fake sees one client port), and the chat's next one on it again."""
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    async with proxied.client.ws_connect("/gateway") as ws:
        proxied.fake.enqueue(Scenario(text_chunks=["Hello"]))
        frames = await send_chat(ws, "c1", "hi")
        assert frames[-1]["type"] == "chat.stream.end"
        await send_message(proxied, proxied.key.secret)
        proxied.fake.enqueue(Scenario(text_chunks=["Again"]))
        frames = await send_chat(ws, "c2", "and again")
        assert frames[-1]["type"] == "chat.stream.end"
    peers = [recorded.peer for recorded in proxied.fake.message_requests]
    assert len(peers) == 3
    assert peers[0] is not None
    assert len(set(peers)) == 1, peers


async def test_clients_send_on_the_pool_they_are_given_and_leave_it_open(
    upstream_pool: aiohttp.ClientSession,
) -> None:
    chat = AnthropicClients(
        None, CONFIG, {"ANTHROPIC_API_KEY": PROVIDER_KEY}, session=upstream_pool
    )
    openai = OpenAIClients(ProviderKeys(None, {}), session=upstream_pool)
    target = await chat.messages_target()
    assert target.session is upstream_pool
    # The chat's own timeouts go with each request, whatever the pool's default.
    assert (target.timeout.sock_connect, target.timeout.sock_read) == (7.0, 7.0)
    assert target.timeout.total is None
    assert openai.session is upstream_pool
    await chat.close()
    assert not upstream_pool.closed
