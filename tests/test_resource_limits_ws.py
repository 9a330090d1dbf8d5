"""The WebSocket's byte limits are bytes: the outbound cap counts UTF-8, and a frame of
exactly ``gateway.max_frame_bytes`` is read while one byte more closes the connection."""

import asyncio
import json
import logging
from typing import ClassVar

import pytest
from aiohttp import WSMsgType
from attrs import frozen

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.gateway.keys import CONNECTIONS
from agentspace_gateway.plugin_api import ClientMessage, ConnectionContext, handles

from conftest import TEST_PLUGINS, credential_headers, inline_plugin
from gateway_plugins import Shouted
from test_gateway_flow_control import masked_text_frame, open_lazy_reader

WIDE = "\U0001f600"  # 4 bytes of UTF-8, one character
CAP = 1024 * 1024
# Each message holds 100,000 wide characters: 400,000 bytes, but 100,000 characters.
MESSAGE_CHARS = 100_000


@frozen(kw_only=True)
class WideFlood(ClientMessage):
    type: ClassVar[str] = "test.wide_flood"
    count: int
    as_deltas: bool = False


def delta_frame(text: str) -> str:
    return json.dumps({"type": "test.shouted", "requestId": "w", "text": text}, ensure_ascii=False)


@handles(WideFlood, replies=[Shouted])
async def wide_flood(context: ConnectionContext, message: WideFlood) -> None:
    """Sends every message in one loop turn: the first is written at once, and all the
    others wait behind it until the turn ends, so what is pending is all of them."""
    for _ in range(message.count):
        if message.as_deltas:
            context.send_delta(delta_frame, WIDE * MESSAGE_CHARS)
        else:
            context.send(Shouted(request_id=message.id, text=WIDE * MESSAGE_CHARS))


PLUGINS = [*TEST_PLUGINS, inline_plugin("test.wide_flood", "test_resource_limits_ws:wide_flood")]


async def wait_closed(connection: ConnectionContext, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if connection.closed:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("as_deltas", [False, True])
async def test_the_outbound_cap_counts_bytes_of_utf8_not_characters(  # type: ignore[no-untyped-def]
    make_client, passphrase, caplog: pytest.LogCaptureFixture, as_deltas: bool
) -> None:
    # 4 messages: the first written at once, the 3 behind it 1.2 MB of UTF-8, over the 1 MiB
    # cap, though only 300,000 characters.
    config = Config(gateway=GatewayConfig(outbound_queue_bytes=CAP))
    client = await make_client(config, plugins=PLUGINS)
    _, writer = await open_lazy_reader(client.server.port, credential_headers(client))
    flood = {"type": "test.wide_flood", "id": "w", "count": 4, "asDeltas": as_deltas}
    try:
        with caplog.at_level(logging.WARNING, logger="agentspace_gateway.gateway.connection"):
            writer.write(masked_text_frame(json.dumps(flood)))
            await writer.drain()
            [connection] = list(client.server.app[CONNECTIONS])
            assert await wait_closed(connection)
    finally:
        writer.close()
    [line] = [r.getMessage() for r in caplog.records if "not reading" in r.getMessage()]
    pending = int(line.split("(")[1].split(" bytes pending")[0])
    assert 3 * 4 * MESSAGE_CHARS <= pending <= 3 * (4 * MESSAGE_CHARS + 200)


async def test_utf8_under_the_cap_is_all_delivered(make_client, passphrase) -> None:  # type: ignore[no-untyped-def]
    # 2 messages: 800,000 bytes, under the 1 MiB cap: a client that reads gets both.
    config = Config(gateway=GatewayConfig(outbound_queue_bytes=CAP))
    client = await make_client(config, plugins=PLUGINS)
    async with client.ws_connect("/gateway") as ws:
        await ws.send_json({"type": "test.wide_flood", "id": "w", "count": 2})
        for _ in range(2):
            message = await ws.receive_json(timeout=10)
            assert message["text"] == WIDE * MESSAGE_CHARS
        await ws.send_json({"type": "ping", "id": "p"})
        assert (await ws.receive_json(timeout=5))["type"] == "pong"


def ping_of(size: int) -> str:
    """A ping frame of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    frame = '{"type":"ping","id":"p"}'
    return frame + " " * (size - len(frame))


@pytest.mark.parametrize("compress", [0, 15])
async def test_a_frame_of_exactly_max_frame_bytes_is_read_and_one_more_byte_closes(  # type: ignore[no-untyped-def]
    make_client, passphrase, compress: int
) -> None:
    client = await make_client(Config(gateway=GatewayConfig(max_frame_bytes=4096)))
    async with client.ws_connect("/gateway", compress=compress) as ws:
        await ws.send_str(ping_of(4096))
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
    async with client.ws_connect("/gateway", compress=compress) as ws:
        await ws.send_str(ping_of(4097))
        frame = await ws.receive(timeout=5)
        assert (frame.type, frame.data) == (WSMsgType.CLOSE, 1009)


async def test_a_frame_of_wide_characters_is_measured_in_bytes(make_client, passphrase) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(Config(gateway=GatewayConfig(max_frame_bytes=4096)))
    # One byte over, in 1,049 characters: the compressed path is the one that must count.
    frame = '{"type":"ping","id":"p","x":"' + WIDE * 1016 + '"}  '
    assert (len(frame.encode()), len(frame)) == (4097, 1049)
    async with client.ws_connect("/gateway", compress=15) as ws:
        await ws.send_str(frame)
        closed = await ws.receive(timeout=5)
        assert (closed.type, closed.data) == (WSMsgType.CLOSE, 1009)
