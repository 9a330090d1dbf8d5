"""The plan's verification against a real ``serve`` process, and sessions across a restart."""

import asyncio
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp

from chat_helpers import deltas, send_chat, shape, until_end
from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import Scenario
from processes import BIN, free_port, gateway_env, health, running, wait_for, wait_for_health_async
from wsclient import exchange, receive, request

GATEWAY = str(BIN / "agentspace-gateway")


async def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == 0


async def test_plan_checks_against_a_real_server_and_the_fake_upstream(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE, ANTHROPIC_API_KEY=TEST_API_KEY, ANTHROPIC_BASE_URL=base_url)
    url = f"ws://127.0.0.1:{port}/gateway"
    argv = [GATEWAY, "serve", "--port", str(port)]

    with running(argv, env, tmp_path) as process:
        await wait_for_health_async(port, process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            assert (await exchange(ws, {"type": "session.list", "id": "t1"}))["sessions"] == []
            first = await send_chat(ws, "t2", "hello")
            session_id = first[0]["sessionId"]
            second = await send_chat(ws, "t3", "and again", sessionId=session_id)
            other = await send_chat(ws, "t4", "a new topic")
            inspection = await exchange(
                ws, {"type": "context.inspect", "id": "t5", "sessionId": session_id}
            )
            usage = await exchange(ws, {"type": "usage.query", "id": "t6"})
            listing = await exchange(ws, {"type": "session.list", "id": "t7"})
            unknown = await exchange(
                ws, {"type": "chat.send", "id": "t8", "content": "x", "sessionId": "nope"}
            )
            invalid = await exchange(ws, "not json")

            fake.enqueue(Scenario(text_chunks=["slow "] * 40, delay_between_chunks=0.02))
            await request(ws, {"type": "chat.send", "id": "t9", "content": "a long story"})
            frame = await receive(ws)
            while frame["type"] != "chat.stream.delta":
                frame = await receive(ws)
            await request(ws, {"type": "chat.send", "id": "t10", "content": "interrupt"})
            seen = await until_end(ws, "t9")
        await stop(process)

    assert shape(first) == [
        "session.created",
        "chat.stream.start",
        "chat.stream.delta",
        "chat.stream.end",
    ]
    assert deltas(first) == "Hello, world!"
    end = first[-1]
    assert end["usage"]["inputTokens"] > 0
    assert end["usage"]["outputTokens"] > 0
    assert end["cost"]["totalCost"] > 0
    sent = fake.message_requests[1].json
    assert sent["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "and again"},
    ]
    assert second[-1]["type"] == "chat.stream.end"
    assert other[0]["type"] == "session.created"
    assert other[0]["sessionId"] != session_id
    assert [s["name"] for s in inspection["sections"]] == [
        "system_prompt",
        "history",
        "memory",
        "skills",
        "tools",
    ]
    assert inspection["totals"]["tokenEstimate"] > 0
    assert inspection["totals"]["byteCount"] > 0
    assert inspection["totals"]["costEstimate"] > 0
    [model_usage] = usage["perModel"].values()
    assert model_usage["requestCount"] >= 2
    assert {s["sessionId"] for s in listing["sessions"]} == {session_id, other[0]["sessionId"]}
    assert unknown["code"] == "SESSION_NOT_FOUND"
    assert invalid["code"] == "INVALID_MESSAGE"
    refused = next(f for f in seen if f.get("requestId") == "t10")
    assert refused["code"] == "STREAM_IN_PROGRESS"
    assert seen[-1]["type"] == "chat.stream.end"

    with sqlite3.connect(home / "agentspace.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "messages", "usage_records", "audit_log"} <= tables

    with running(argv, env, tmp_path) as process:
        await wait_for_health_async(port, process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            again = await exchange(ws, {"type": "session.list", "id": "again"})
        await stop(process)
    counts = {s["sessionId"]: s["messageCount"] for s in again["sessions"]}
    assert counts[session_id] == 4  # two questions, two replies, after a restart


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
