"""Who may open /gateway: Origin and Host checks, loopback peers, tokens, frame limits."""

import asyncio
import sqlite3
from unittest import mock

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import make_mocked_request

from agentspace_gateway.config import Config, GatewayConfig, ServerConfig
from agentspace_gateway.gateway.access import check_access
from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from wsclient import exchange, receive, request


def audit_events(home: Home) -> list[tuple[str, str | None]]:
    with sqlite3.connect(home.database) as connection:
        return connection.execute("SELECT event, detail FROM audit_log ORDER BY id").fetchall()


async def close_code_sent(ws: aiohttp.ClientWebSocketResponse) -> int:
    """The code in the close frame the server sent. ``ws.close_code`` is not it: aiohttp
    overwrites it with 1006 when its own closing reply meets an already-closed transport,
    which a loaded machine makes likely."""
    frame = await ws.receive(timeout=5)
    assert frame.type is WSMsgType.CLOSE, (frame.type, frame.data)
    code: int = frame.data
    return code


async def refused_status(client, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers=headers)
    return refused.value.status


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://127.0.0.1:1",
        "http://localhost:9999",
        "null",
        "https://127.0.0.1",
    ],
)
async def test_foreign_origins_are_refused_before_the_upgrade(
    client, home: Home, origin: str
) -> None:
    assert await refused_status(client, {"Origin": origin}) == 403
    assert audit_events(home)[-1][0] == "gateway.refused"


async def test_own_and_configured_origins_and_no_origin_pass(make_client, passphrase) -> None:
    config = Config(gateway=GatewayConfig(allowed_origins=("http://localhost:5173",)))
    client = await make_client(config)
    port = client.server.port
    for headers in (
        {},
        {"Origin": f"http://127.0.0.1:{port}"},
        {"Origin": f"http://localhost:{port}"},
        {"Origin": "http://localhost:5173"},
    ):
        async with client.ws_connect("/gateway", headers=headers) as ws:
            assert (await exchange(ws, {"type": "ping", "id": "o"}))["type"] == "pong"


@pytest.mark.parametrize("host", ["evil.example:3271", "127.evil.example"])
async def test_foreign_host_is_refused_on_the_upgrade(client, host: str) -> None:
    assert await refused_status(client, {"Host": host}) == 421


def mocked(remote: str, origin: str | None = None) -> aiohttp.web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: {
        "peername": (remote, 50000),
        "sockname": ("127.0.0.1", 3271),
    }.get(name, default)
    headers = {"Host": "127.0.0.1:3271", **({"Origin": origin} if origin else {})}
    return make_mocked_request("GET", "/gateway", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("remote", "allow_remote", "allowed"),
    [
        ("127.0.0.1", False, True),
        ("127.0.0.5", False, True),
        ("::1", False, True),
        ("192.168.1.20", False, False),
        ("10.0.0.7", False, False),
        ("192.168.1.20", True, True),
    ],
)
def test_peers_off_loopback_need_allow_remote(
    remote: str, allow_remote: bool, allowed: bool
) -> None:
    config = Config(server=ServerConfig(allow_remote=allow_remote))
    refusal = check_access(mocked(remote), config)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.status == 403
        assert "--allow-remote" in refusal.message


def test_own_origin_follows_the_port_the_request_came_in_on() -> None:
    assert check_access(mocked("127.0.0.1", "http://localhost:3271"), Config()) is None
    assert check_access(mocked("127.0.0.1", "http://localhost:3272"), Config()) is not None


TOKEN_CONFIG = Config(gateway=GatewayConfig(require_token=True, auth_timeout_seconds=0.5))


async def test_token_in_the_upgrade_header(make_client, vault: CredentialVault, home: Home) -> None:
    client = await make_client(TOKEN_CONFIG, logged_in=False)
    token = vault.get_token()
    async with client.ws_connect("/gateway", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await exchange(ws, {"type": "ping", "id": "h"}))["type"] == "pong"
    assert await refused_status(client, {"Authorization": "Bearer wrong"}) == 401
    assert audit_events(home)[-1] == ("access.denied", "gateway upgrade: wrong bearer token")


async def test_token_in_the_first_frame(make_client, vault: CredentialVault) -> None:
    client = await make_client(TOKEN_CONFIG, logged_in=False)
    async with client.ws_connect("/gateway") as ws:
        assert await exchange(ws, {"type": "auth", "id": "a1", "token": vault.get_token()}) == {
            "type": "auth.ok"
        }
        assert (await exchange(ws, {"type": "ping", "id": "f"}))["type"] == "pong"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ({"type": "auth", "id": "a", "token": "wrong-token"}, "wrong token in auth frame"),
        ({"type": "ping", "id": "p"}, "first frame was ping, not auth"),
        ("not json", "first frame invalid"),
        (None, "no auth frame"),
    ],
)
async def test_failed_frame_auth_closes_4401_and_is_audited(
    make_client, vault: CredentialVault, home: Home, first: object, reason: str
) -> None:
    client = await make_client(TOKEN_CONFIG, logged_in=False)
    async with client.ws_connect("/gateway") as ws:
        if first is not None:
            await request(ws, first)  # type: ignore[arg-type]
        assert await close_code_sent(ws) == 4401
    event, detail = audit_events(home)[-1]
    assert event == "access.denied"
    assert reason in (detail or "")


async def test_required_token_without_a_vault_is_503(make_client) -> None:
    client = await make_client(TOKEN_CONFIG, logged_in=False)
    assert await refused_status(client, {}) == 503


async def test_allow_remote_forces_the_token_on(make_client, vault: CredentialVault) -> None:
    client = await make_client(Config(server=ServerConfig(allow_remote=True)), logged_in=False)
    async with client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "ping", "id": "p"})
        assert await close_code_sent(ws) == 4401


async def test_frames_over_the_limit_close_with_1009(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        await ws.send_str('{"type":"chat.send","id":"big","content":"' + "x" * (1024 * 1024) + '"}')
        assert await close_code_sent(ws) == 1009


async def test_a_frame_just_under_the_limit_is_handled(chat_client) -> None:
    content = "y" * (512 * 1024 - 10)
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "near", "content": content})
        assert (await receive(ws))["type"] == "session.created"
        assert (await receive(ws))["type"] == "chat.stream.start"


async def test_heartbeat_drops_a_peer_that_never_answers(make_client, passphrase) -> None:
    client = await make_client(Config(gateway=GatewayConfig(heartbeat_seconds=0.2)))
    ws = await client.ws_connect("/gateway", autoping=False)
    try:
        closed = False
        for _ in range(20):
            frame = await ws.receive(timeout=5)
            if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                closed = True
                break
            assert frame.type is WSMsgType.PING
        assert closed
    finally:
        await ws.close()
    await asyncio.sleep(0)
