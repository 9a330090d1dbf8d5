"""Rotating the token closes the WebSocket connections that proved the old one (4401).

The vault is changed from outside the app, as ``agentspace-gateway token rotate`` in another
process does: through a second CredentialVault on the same file, and through the real CLI.
"""

import asyncio
import sqlite3
import subprocess
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.gateway.keys import TOKEN_HOLDERS
from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from conftest import PASSPHRASE
from processes import BIN, gateway_env
from wsclient import exchange

CHECK = 0.1


def token_config(**gateway: Any) -> Config:
    return Config(gateway=GatewayConfig(require_token=True, token_check_seconds=CHECK, **gateway))


def audit(home: Home, event: str) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(
            "SELECT * FROM audit_log WHERE event = ? ORDER BY id", (event,)
        ).fetchall()


async def closed_with(ws: ClientWebSocketResponse, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server closes; every frame before the close must be ordinary."""
    while True:
        frame = await ws.receive(timeout=timeout)
        if frame.type is WSMsgType.CLOSE:
            return frame.data, frame.extra
        assert frame.type is WSMsgType.TEXT, frame


async def by_header(client, token: str) -> ClientWebSocketResponse:  # type: ignore[no-untyped-def]
    ws: ClientWebSocketResponse = await client.ws_connect(
        "/gateway", headers={"Authorization": f"Bearer {token}", "User-Agent": "header-client/1"}
    )
    assert (await exchange(ws, {"type": "ping", "id": "h"}))["type"] == "pong"
    return ws


async def by_frame(client, token: str) -> ClientWebSocketResponse:  # type: ignore[no-untyped-def]
    ws: ClientWebSocketResponse = await client.ws_connect("/gateway")
    assert await exchange(ws, {"type": "auth", "id": "a", "token": token}) == {"type": "auth.ok"}
    return ws


async def test_rotation_closes_connections_that_used_the_old_token(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(token_config(), logged_in=False)
    old = vault.get_token()
    assert old is not None
    header_ws, frame_ws = await by_header(client, old), await by_frame(client, old)

    started = time.monotonic()
    new = vault.rotate_token()  # a second vault on the same file: another process's view
    closes = await asyncio.gather(closed_with(header_ws), closed_with(frame_ws))
    noticed = time.monotonic() - started

    for code, reason in closes:
        assert code == 4401
        assert "token rotated" in reason
    assert noticed < 5.0  # checked every 0.1 s here; generous for a loaded machine
    rows = audit(home, "gateway.revoked")
    assert len(rows) == 2
    assert {row["user_agent"] for row in rows} >= {"header-client/1"}
    assert all(row["remote_addr"] == "127.0.0.1" for row in rows)
    assert old not in str([tuple(row) for row in rows])
    assert len(client.server.app[TOKEN_HOLDERS]) == 0

    # The new token opens the gateway; the old one no longer does.
    async with client.ws_connect("/gateway", headers={"Authorization": f"Bearer {new}"}) as ws:
        assert (await exchange(ws, {"type": "ping", "id": "n"}))["type"] == "pong"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers={"Authorization": f"Bearer {old}"})
    assert refused.value.status == 401
    await header_ws.close()
    await frame_ws.close()


async def test_connections_keep_working_while_the_token_stays(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(token_config(), logged_in=False)
    token = vault.get_token()
    assert token is not None
    ws = await by_header(client, token)
    vault.add_key("anthropic", "sk-ant-api03-" + "unrelated" * 8)  # the vault file changes
    for n in range(5):
        await asyncio.sleep(CHECK)
        assert (await exchange(ws, {"type": "ping", "id": f"p{n}"}))["type"] == "pong"
    assert audit(home, "gateway.revoked") == []
    await ws.close()


async def test_connections_that_needed_no_token_are_unaffected(
    make_client, vault: CredentialVault, home: Home
) -> None:
    # Loopback with require_token = false: there is no token to revoke.
    client = await make_client(
        Config(gateway=GatewayConfig(require_token=False, token_check_seconds=CHECK))
    )
    async with client.ws_connect("/gateway") as ws:
        vault.rotate_token()
        await asyncio.sleep(CHECK * 5)
        assert (await exchange(ws, {"type": "ping", "id": "still"}))["type"] == "pong"
        # An auth frame on such a connection proves nothing and pins nothing.
        await exchange(ws, {"type": "auth", "id": "a", "token": "anything-at-all"})
        vault.rotate_token()
        await asyncio.sleep(CHECK * 5)
        assert (await exchange(ws, {"type": "ping", "id": "again"}))["type"] == "pong"
    assert audit(home, "gateway.revoked") == []


async def test_token_rotate_from_the_command_line_closes_the_connection(
    make_client, vault: CredentialVault, home: Home, tmp_path
) -> None:
    client = await make_client(token_config(), logged_in=False)
    old = vault.get_token()
    assert old is not None
    ws = await by_header(client, old)

    rotated = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentspace-gateway"), "token", "rotate"],
        env=gateway_env(home.root, PASSPHRASE),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    code, reason = await closed_with(ws)
    assert (code, reason) == (4401, "token rotated; reconnect with the new token")
    new = rotated.stdout.strip()
    assert new not in (old, "")
    assert vault.get_token() == new
    assert len(audit(home, "gateway.revoked")) == 1
    await ws.close()
