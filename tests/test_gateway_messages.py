"""Every message type and error code over a real WebSocket (aiohttp_client + ws_connect)."""

import asyncio
import logging
import sqlite3

import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.home import Home
from agentspace_gateway.storage import NewUsage, ReplyRecorder

from chat_helpers import send_chat
from wsclient import exchange, receive


def rows(home: Home, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql).fetchall()


async def test_ping_is_answered_with_pong(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        assert await exchange(ws, {"type": "ping", "id": "p1"}) == {
            "type": "pong",
            "requestId": "p1",
        }


async def test_session_list_starts_empty(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "session.list", "id": "t1"})
    assert reply == {"type": "session.list", "requestId": "t1", "sessions": []}


async def test_chat_send_to_an_existing_session_by_id_or_key(chat_client, home: Home) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "a", "one", model="claude-haiku-4.5")
        created = first[0]
        by_id = await send_chat(ws, "b", "two", sessionId=created["sessionId"])
        by_key = await send_chat(ws, "c", "three", sessionId=created["sessionKey"])
        listing = await exchange(ws, {"type": "session.list", "id": "l"})

    assert created["type"] == "session.created"
    assert by_id[0]["type"] == by_key[0]["type"] == "chat.stream.start"  # no new session
    assert [
        row["content"] for row in rows(home, "SELECT content FROM messages WHERE role = 'user'")
    ] == ["one", "two", "three"]
    [summary] = listing["sessions"]
    assert summary["messageCount"] == 6  # three questions, three replies
    assert summary["model"] == "claude-haiku-4-5"  # the dotted spelling is normalised
    assert summary["createdAt"].endswith("Z")


async def test_unknown_session_is_session_not_found(client, home: Home) -> None:
    async with client.ws_connect("/gateway") as ws:
        for message in (
            {"type": "chat.send", "id": "x1", "content": "hi", "sessionId": "nope"},
            {"type": "context.inspect", "id": "x2", "sessionId": "agent:default:nope"},
            {"type": "usage.query", "id": "x3", "sessionId": "nope"},
        ):
            reply = await exchange(ws, message)
            assert (reply["type"], reply["code"], reply["requestId"]) == (
                "error",
                "SESSION_NOT_FOUND",
                message["id"],
            )
    assert rows(home, "SELECT COUNT(*) FROM messages")[0][0] == 0


async def test_usage_report_sums_the_ledger_per_model(client) -> None:
    app = client.server.app
    sessions, recorder = app[appkeys.SESSIONS], ReplyRecorder(app[appkeys.DATABASE])
    first = await sessions.create(agent_id="default", model="claude-sonnet-4-5")
    second = await sessions.create(agent_id="default", model="claude-haiku-4-5")
    await recorder.record(
        None,
        NewUsage(
            session_id=first.id,
            model="claude-sonnet-4-5",
            input_tokens=1000,
            output_tokens=500,
            cost_nanousd=10_500_000,
        ),
    )
    await recorder.record(
        None,
        NewUsage(
            session_id=first.id,
            model="claude-sonnet-4-5",
            input_tokens=10,
            output_tokens=5,
            cost_nanousd=105_000,
        ),
    )
    await recorder.record(
        None,
        NewUsage(
            session_id=second.id,
            model="claude-haiku-4-5",
            input_tokens=7,
            output_tokens=3,
            cost_nanousd=300,
        ),
    )
    async with client.ws_connect("/gateway") as ws:
        everything = await exchange(ws, {"type": "usage.query", "id": "u1"})
        one = await exchange(ws, {"type": "usage.query", "id": "u2", "sessionId": second.id})

    assert everything["perModel"]["claude-sonnet-4-5"] == {
        "inputTokens": 1010,
        "outputTokens": 505,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": 0,
        "totalTokens": 1515,
        "totalCost": 0.010605,
        "requestCount": 2,
        "priced": True,
        "totalCostNanos": 10_605_000,
        "cacheCreation1hInputTokens": 0,
    }
    assert everything["grandTotal"] == {
        "totalCost": 0.010605300,
        "totalTokens": 1525,
        "requestCount": 3,
        "totalCostNanos": 10_605_300,
    }
    assert list(one["perModel"]) == ["claude-haiku-4-5"]
    assert one["grandTotal"]["totalCost"] == 0.0000003


async def test_session_list_counts_messages_newest_activity_first(client) -> None:
    app = client.server.app
    sessions, messages = app[appkeys.SESSIONS], app[appkeys.MESSAGES]
    old = await sessions.create(agent_id="default", model="m1")
    new = await sessions.create(agent_id="coder", model="m2")
    for text in ("a", "b"):
        await messages.add(new.id, "user", text)
    await asyncio.sleep(0.002)
    await messages.add(old.id, "user", "latest")  # makes the older session the most recent
    async with client.ws_connect("/gateway") as ws:
        listing = await exchange(ws, {"type": "session.list", "id": "l"})
    assert [(s["sessionId"], s["messageCount"]) for s in listing["sessions"]] == [
        (old.id, 1),
        (new.id, 2),
    ]
    assert listing["sessions"][1]["sessionKey"] == f"agent:coder:{new.id}"


@pytest.mark.parametrize(
    ("frame", "request_id", "fields"),
    [
        ("not json", None, None),
        ("[1, 2]", None, None),
        ('{"type": "ping", "id": "n", "x": NaN}', None, None),
        ("[" * 50_000 + "]" * 50_000, None, None),
        ('{"id": "m1"}', "m1", ["type"]),
        ('{"type": 7, "id": "m2"}', "m2", ["type"]),
        ('{"type": "ping"}', None, ["id"]),
        ('{"type": "ping", "id": 5}', None, ["id"]),
        ('{"type": "chat.send", "id": "m3"}', "m3", ["content"]),
        ('{"type": "chat.send", "id": "m4", "content": 5}', "m4", ["content"]),
        ('{"type": "chat.send", "id": "m5", "content": ""}', "m5", ["content"]),
        (
            '{"type": "chat.send", "id": "m6", "content": "x", "session_id": "s"}',
            "m6",
            ["session_id"],
        ),
        (
            '{"type": "chat.send", "id": "m7", "content": "x", "model": "no spaces please"}',
            "m7",
            ["model"],
        ),
        (
            '{"type": "chat.send", "id": "m8", "content": true, "extra": 1}',
            "m8",
            ["content", "extra"],
        ),
        ('{"type": "usage.query", "id": "m9", "sessionId": 12}', "m9", ["sessionId"]),
        ('{"type": "context.inspect", "id": "m10"}', "m10", ["sessionId"]),
    ],
)
async def test_invalid_messages_get_field_level_details(
    client, frame: str, request_id: str | None, fields: list[str] | None
) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, frame)
        assert await exchange(ws, {"type": "ping", "id": "after"}) == {
            "type": "pong",
            "requestId": "after",
        }
    assert reply["type"] == "error"
    assert reply["code"] == "INVALID_MESSAGE"
    assert reply.get("requestId") == request_id
    assert reply["message"]
    if fields is not None:
        assert sorted(problem["field"] for problem in reply["details"]) == sorted(fields)
        assert all(problem["message"] for problem in reply["details"])


async def test_unknown_type_lists_the_supported_ones(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "chat.sned", "id": "u"})
    assert (reply["code"], reply["requestId"]) == ("UNKNOWN_TYPE", "u")
    supported = reply["details"]["supportedTypes"]
    for tag in (
        "chat.send",
        "context.inspect",
        "usage.query",
        "session.list",
        "ping",
        "test.shout",
    ):
        assert tag in supported
    assert "chat.send" in reply["message"]


async def test_binary_frames_are_refused_with_a_structured_error(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        await ws.send_bytes(b'{"type": "ping", "id": "b"}')
        reply = await receive(ws)
    assert reply["code"] == "INVALID_MESSAGE"
    assert "text" in reply["message"]


async def test_a_crashing_handler_is_internal_error_and_the_connection_lives(
    client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        async with client.ws_connect("/gateway") as ws:
            reply = await exchange(ws, {"type": "test.crash", "id": "boom"})
            pong = await exchange(ws, {"type": "ping", "id": "alive"})
    assert (reply["code"], reply["requestId"]) == ("INTERNAL_ERROR", "boom")
    assert "deliberate failure" not in reply["message"]  # internals stay in the log
    assert pong == {"type": "pong", "requestId": "alive"}
    crash = next(r for r in caplog.records if "test.crash" in r.getMessage())
    assert crash.exc_info is not None
    assert "deliberate failure inside a handler" in str(crash.exc_info[1])


async def test_plugin_messages_are_validated_strictly_too(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        good = await exchange(ws, {"type": "test.shout", "id": "s1", "text": "hey", "times": 2})
        bad = await exchange(ws, {"type": "test.shout", "id": "s2", "text": "hey", "times": "2"})
        coerced = await exchange(
            ws, {"type": "test.shout", "id": "s3", "text": "hey", "times": True}
        )
    assert good == {"type": "test.shouted", "requestId": "s1", "text": "HEYHEY"}
    assert [p["field"] for p in bad["details"]] == ["times"]
    assert [p["field"] for p in coerced["details"]] == ["times"]


async def test_auth_frame_without_a_required_token_is_acknowledged(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        assert await exchange(ws, {"type": "auth", "id": "a", "token": "anything"}) == {
            "type": "auth.ok"
        }
