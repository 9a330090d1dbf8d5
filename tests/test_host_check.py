"""Host header parsing: addresses parsed properly, look-alike names refused, and a host named
in the request line (absolute form) held to the same list."""

import asyncio
import json

import pytest

from agentspace_gateway.host_check import (
    MAX_KNOWN_HOSTS,
    host_allowed,
    misdirection,
    split_host,
    target_authority,
)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:3271", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:3271", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("evil.example:80", "evil.example"),
        ("", None),
        ("[::1", None),
        ("[::1]x", None),
        ("[not-an-address]:1", None),
        ("127.0.0.1:", None),
        ("::1", None),
        ("host:port", None),
    ],
)
def test_split_host(header: str, name: str | None) -> None:
    assert split_host(header) == name


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, False),
        ("127.0.0.1", True),
        ("127.1.2.3:9", True),
        ("localhost:3271", True),
        ("[::1]", True),
        ("127.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("0.0.0.0:3271", False),
        ("192.168.1.10", False),
        ("gateway.lan", True),
        ("GATEWAY.LAN:443", True),
    ],
)
def test_host_allowed(header: str | None, allowed: bool) -> None:
    assert host_allowed(header, ["gateway.lan"]) is allowed


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("/health", None),
        ("*", None),
        ("http://evil.example/x?y=1", ("http", "evil.example")),
        ("HTTP://127.0.0.1:3271", ("http", "127.0.0.1:3271")),
        ("https://[::1]:9?x", ("https", "[::1]:9")),
        ("http://user@evil.example#f", ("http", "user@evil.example")),
        ("evil.example:443", ("", "evil.example:443")),  # CONNECT's authority form
    ],
)
def test_target_authority(target: str, named: tuple[str, str] | None) -> None:
    assert target_authority(target) == named


@pytest.mark.parametrize(
    ("target", "host", "status"),
    [
        ("/health", "127.0.0.1:3271", None),
        ("/health", "evil.example", 421),
        ("http://127.0.0.1:3271/health", "127.0.0.1:3271", None),
        ("http://LOCALHOST/health", "localhost:80", None),  # the scheme's default port
        ("https://[::1]/health", "[0::1]:443", None),
        ("http://gateway.lan/health", "gateway.lan", None),
        ("http://evil.example/health", "127.0.0.1:3271", 421),
        ("http://127.evil.example/health", "127.evil.example", 421),
        ("evil.example:443", "127.0.0.1", 421),
        ("http://localhost:3271/health", "127.0.0.1:3271", 400),  # two hosts named
        ("http://127.0.0.1:3271/health", "127.0.0.1:3272", 400),
        ("http://127.0.0.1/health", "127.0.0.1:3271", 400),
        ("http://127.0.0.1:3271/health", None, 400),
        ("http://user@127.0.0.1:3271/health", "127.0.0.1:3271", 400),
    ],
)
def test_misdirection(target: str, host: str | None, status: int | None) -> None:
    refusal = misdirection(target, host, ["gateway.lan"])
    assert (refusal and refusal[0]) == status


async def raw_response(port: int, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send a request line and headers as written; aiohttp's client never sends absolute form."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + b"\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 5)).strip():
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()


UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize("path", ["/health", "/keys/anthropic", "/gateway"])
async def test_a_foreign_host_in_the_request_line_is_refused(client, path: str) -> None:
    port = client.server.port
    extra = UPGRADE if path == "/gateway" else ""
    head = f"GET http://evil.example{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
    status, _, body = await raw_response(port, head)
    assert status == 421
    error = json.loads(body)["error"]
    assert error["code"] == "MISDIRECTED_REQUEST"
    assert "evil.example" in error["message"]


@pytest.mark.parametrize("path", ["/health", "/gateway"])
async def test_a_request_line_naming_another_host_than_host_is_refused(client, path: str) -> None:
    port = client.server.port
    extra = UPGRADE if path == "/gateway" else ""
    head = f"GET http://localhost:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
    status, _, body = await raw_response(port, head)
    assert status == 400
    assert "must agree" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("path", ["/health", "/gateway"])
async def test_the_absolute_form_naming_this_gateway_is_served(client, path: str) -> None:
    port = client.server.port
    extra = UPGRADE if path == "/gateway" else ""
    head = f"GET http://127.0.0.1:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
    status, headers, body = await raw_response(port, head)
    if path == "/gateway":
        assert status == 101
        assert headers["upgrade"].lower() == "websocket"
    else:
        assert status == 200
        assert json.loads(body)["status"] == "ok"


async def test_each_host_keeps_its_verdict_however_many_hosts_come(client) -> None:
    """The verdicts kept per Host header: the same answer each time, for more headers than
    are kept, an allowed one among them."""
    port = client.server.port
    served = f"127.0.0.1:{port}"
    foreign = [f"evil-{number}.example" for number in range(MAX_KNOWN_HOSTS + 10)]
    for _ in range(2):
        for host in [served, *foreign, served, "LOCALHOST"]:
            response = await client.get("/health", headers={"Host": host})
            assert response.status == (421 if host.startswith("evil") else 200), host
    # A path's verdict is kept by header; a host in the request line is still checked.
    head = f"GET http://evil.example/health HTTP/1.1\r\nHost: {served}\r\n"
    status, _, _ = await raw_response(port, head)
    assert status == 421
