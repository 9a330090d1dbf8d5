"""The plan's verification against a real ``serve`` process, and sessions across a restart."""

import signal
import sqlite3
from pathlib import Path

import aiohttp

from conftest import PASSPHRASE
from processes import BIN, free_port, gateway_env, health, running, wait_for
from wsclient import exchange, receive, request

GATEWAY = str(BIN / "agentspace-gateway")


async def test_plan_verification_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    url = f"ws://127.0.0.1:{port}/gateway"

    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        wait_for(lambda: health(port), process=process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert await exchange(ws, {"type": "session.list", "id": "t1"}) == {
                "type": "session.list",
                "requestId": "t1",
                "sessions": [],
            }
            await request(ws, {"type": "chat.send", "id": "t2", "content": "hello"})
            created = await receive(ws)
            refused = await receive(ws)
            invalid = await exchange(ws, "not json")
        assert created["type"] == "session.created"
        assert (refused["code"], refused["requestId"]) == ("NOT_IMPLEMENTED", "t2")
        assert invalid["code"] == "INVALID_MESSAGE"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0

    with sqlite3.connect(home / "agentspace.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "messages", "usage_records", "audit_log"} <= tables

    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        wait_for(lambda: health(port), process=process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            listing = await exchange(ws, {"type": "session.list", "id": "again"})
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)

    [session] = listing["sessions"]
    assert session["sessionId"] == created["sessionId"]
    assert session["sessionKey"] == created["sessionKey"]
    assert session["messageCount"] == 1


async def test_shutdown_tells_connected_clients_it_is_going_away(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    with running([GATEWAY, "serve", "--port", str(port)], gateway_env(home), tmp_path) as process:
        wait_for(lambda: health(port), process=process)
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{port}/gateway") as ws,
        ):
            process.send_signal(signal.SIGTERM)
            frame = await ws.receive(timeout=10)
            assert frame.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1001
        process.communicate(timeout=20)
    assert process.returncode == 0
