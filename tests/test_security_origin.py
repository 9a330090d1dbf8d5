"""Cross-site WebSocket hijacking and DNS rebinding: the cases test_gateway_access.py and
test_keyserver.py leave out.

Those cover Origin http://evil.example, other localhost ports, "null", and foreign Host
headers (421) on /health, /keys and the /gateway upgrade. Here: look-alike origins of the
gateway's own port, a foreign Host with a valid token, malformed Host lines, and CORS (no
route lets a page read a response, so a page cannot use the key server either).
"""

import asyncio
import sqlite3

import aiohttp
import pytest

from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from wsclient import exchange

API_KEY = "sk-ant-api03-" + "0r1g1n" * 12


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:{port}",  # the right host and port, another scheme
        "http://127.0.0.1:{port}/",
        "http://127.0.0.1:{port}.evil.example",
        "http://localhost:{port}@evil.example",
        "http://127.0.0.2:{port}",  # loopback, but not a page the gateway serves
        "http://127.0.0.1",
        "HTTP://LOCALHOST:{port}",  # browsers serialise origins in lower case
        "http://evil.example:{port}",
        "",
    ],
)
async def test_look_alike_origins_are_refused(client, home: Home, origin: str) -> None:
    headers = {"Origin": origin.format(port=client.server.port)}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers=headers)
    assert refused.value.status == 403
    with sqlite3.connect(home.database) as connection:
        (event,) = connection.execute("SELECT event FROM audit_log ORDER BY id DESC").fetchone()
    assert event == "gateway.refused"


async def test_the_gateways_own_ipv6_origin_passes(client) -> None:
    headers = {"Origin": f"http://[::1]:{client.server.port}"}
    async with client.ws_connect("/gateway", headers=headers) as ws:
        assert (await exchange(ws, {"type": "ping", "id": "v6"}))["type"] == "pong"


@pytest.mark.parametrize("path", ["/keys/anthropic", "/gateway"])
async def test_a_rebound_host_is_refused_even_with_the_right_token(
    client, vault: CredentialVault, home: Home, path: str
) -> None:
    vault.add_key("anthropic", API_KEY)
    headers = {"Host": "evil.example:3271", "Authorization": f"Bearer {vault.get_token()}"}
    if path == "/gateway":
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(path, headers=headers)
        assert refused.value.status == 421
    else:
        response = await client.get(path, headers=headers)
        assert response.status == 421
        assert API_KEY not in await response.text()
    with sqlite3.connect(home.database) as connection:
        served = connection.execute("SELECT count(*) FROM audit_log WHERE event = 'key.access'")
        assert served.fetchone() == (0,)


async def first_line(port: int, request: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode())
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).strip()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "head",
    [
        "GET /keys/anthropic HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n",
        "GET /keys/anthropic HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\n",
        "GET /keys/anthropic HTTP/1.0\r\n",  # no Host at all
        "GET /keys/anthropic HTTP/1.1\r\nHost: localhost.evil.example\r\n",
    ],
)
async def test_malformed_or_missing_host_lines_are_refused(client, head: str) -> None:
    status = await first_line(client.server.port, head + "\r\n")
    assert status.split()[1] in (b"400", b"421"), status


async def test_no_route_grants_cross_origin_reads(client, vault: CredentialVault) -> None:
    """A page cannot send Authorization cross-site without a preflight, which is refused."""
    vault.add_key("anthropic", API_KEY)
    evil = {"Origin": "http://evil.example"}
    preflight = await client.options(
        "/keys/anthropic",
        headers={
            **evil,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status >= 400
    for response in (
        preflight,
        await client.get("/keys/anthropic", headers={**evil, "Authorization": "Bearer x"}),
        await client.get("/health", headers=evil),
    ):
        assert not [name for name in response.headers if name.lower().startswith("access-control")]
