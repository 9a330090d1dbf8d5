"""A client that stops reading is closed at the outbound bound; the server stays bounded."""

import asyncio
import base64
import json
import logging
import os
import socket
import struct

import pytest

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.gateway.keys import CONNECTIONS

from conftest import credential_headers


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + body


async def open_lazy_reader(
    port: int, headers: dict[str, str] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A real WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /gateway HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
            + "\r\n"
        ).encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101")
    return reader, writer


async def drained_until_closed(reader: asyncio.StreamReader, timeout: float = 10.0) -> int:
    """Read what the server managed to send, until it closes; return the byte count."""
    total = 0
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return total
            if not chunk:
                return total
            total += len(chunk)


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        ({"outbound_queue_messages": 16, "slow_client_seconds": 0.5}, "messages pending for"),
        ({"outbound_queue_bytes": 2 * 1024 * 1024}, "bytes pending, over the cap"),
    ],
)
async def test_a_client_that_stops_reading_is_closed(
    make_client, passphrase, caplog: pytest.LogCaptureFixture, limits: dict[str, float], why: str
) -> None:
    client = await make_client(Config(gateway=GatewayConfig(**limits)))  # type: ignore[arg-type]
    app = client.server.app
    reader, writer = await open_lazy_reader(client.server.port, credential_headers(client))
    flood = {"type": "test.flood", "id": "f", "count": 400, "size": 20_000}

    with caplog.at_level(logging.WARNING, logger="agentspace_gateway.gateway.connection"):
        writer.write(masked_text_frame(json.dumps(flood)))
        await writer.drain()
        [connection] = list(app[CONNECTIONS])
        for _ in range(100):
            if connection.closed:
                break
            await asyncio.sleep(0.05)
        assert connection.closed

    line = next(r.getMessage() for r in caplog.records if "not reading" in r.getMessage())
    assert connection.id in line
    assert "127.0.0.1" in line
    assert why in line
    assert "messages pending" in line
    received = await drained_until_closed(reader)
    assert received < 400 * 20_000  # most of the flood was never sent
    writer.close()
    for _ in range(100):
        if not app[CONNECTIONS]:
            break
        await asyncio.sleep(0.05)
    assert not app[CONNECTIONS]


async def test_a_reading_client_gets_everything(make_client, passphrase) -> None:
    client = await make_client(Config(gateway=GatewayConfig(outbound_queue_messages=16)))
    async with client.ws_connect("/gateway") as ws:
        await ws.send_json({"type": "test.flood", "id": "f", "count": 300, "size": 1000})
        for _ in range(300):
            message = await ws.receive_json(timeout=5)
            assert message["requestId"] == "f"
        assert (await ws.send_json({"type": "ping", "id": "p"})) is None
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
