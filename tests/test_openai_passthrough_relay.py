"""The OpenAI door relays bytes as they arrive, never the whole stream at once: an upstream
(a bare aiohttp server here, to send what no real server would) waits for the client to
have an event before it sends the next, so a relay that held the stream back would hang."""

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agentspace_gateway.config import Config, ProviderConfig
from agentspace_gateway.proxy.sse import MAX_PENDING_BYTES

from proxy_helpers import issue

# A guard against a hang, not a figure: the waits below end in milliseconds when it works.
HANG = 30


class Upstream:
    """Sends ``first``, waits until told the client has it, then sends ``rest``."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first = first
        self.rest = rest
        self.client_has_first = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(self.first)
        await asyncio.wait_for(self.client_has_first.wait(), HANG)
        await response.write(self.rest)
        await response.write_eof()
        return response


def chunk(text: str) -> bytes:
    body = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


Relay = tuple[Upstream, TestClient[web.Request, web.Application], str]


@pytest.fixture
async def relay(make_client) -> AsyncIterator[Relay]:  # type: ignore[no-untyped-def]
    upstream = Upstream(b"", b"")
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    async with TestServer(app) as server:
        provider = ProviderConfig(kind="openai", base_url=str(server.make_url("/v1")), key="none")
        client = await make_client(Config(providers={"lab": provider}))
        key = await issue(client, "aider")
        yield upstream, client, key.secret


async def read_until(response: aiohttp.ClientResponse, wanted: bytes) -> bytes:
    seen = b""
    while wanted not in seen:
        piece = await asyncio.wait_for(response.content.readany(), HANG)
        assert piece, f"the stream ended before {wanted[:40]!r}"
        seen += piece
    return seen


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(chunk("Hello"), id="one whole event"),
        # An event with no end in sight, longer than any usage chunk: relayed, not held.
        pytest.param(b"data: " + b"x" * (MAX_PENDING_BYTES + 1), id="an event without end"),
    ],
)
async def test_what_the_upstream_sent_reaches_the_client_before_the_rest(
    relay: Relay, first: bytes
) -> None:
    upstream, client, secret = relay
    upstream.first = first
    upstream.rest = b"\n\n" + chunk(" world") + b"data: [DONE]\n\n"
    body = {"model": "lab/tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    async with client.post("/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200
        seen = await read_until(response, first[-64:])
        upstream.client_has_first.set()
        seen += await response.content.read()
    assert first in seen
    assert b'"content": " world"' in seen
    assert seen.endswith(b"data: [DONE]\n\n")
