"""session.history: a session's stored messages, for a client that switches to it."""

import re

import pytest

from agentspace_gateway.tokens import TokenEstimator

from chat_helpers import query, send_chat, until_end
from fake_anthropic import Scenario
from wsclient import exchange, receive, request

ISO_MILLISECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_the_messages_come_back_oldest_first_with_their_state(
    chat_client, fake_anthropic, home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(text_chunks=["Hi", " there"], output_tokens=7),
        Scenario(text_chunks=["Counting: ", "1, ", "2"], stall_after=2),
    )
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "t1", "hello")
        session_id = first[0]["sessionId"]
        await request(
            ws, {"type": "chat.send", "id": "t2", "content": "count", "sessionId": session_id}
        )
        seen = ""
        while seen != "Counting: 1, ":  # then the fake stalls: the reply is cut at a known point
            frame = await receive(ws)
            seen += frame["delta"] if frame["type"] == "chat.stream.delta" else ""
        await request(ws, {"type": "chat.cancel", "id": "x", "requestId": "t2"})
        await until_end(ws, "t2")
        by_id = await exchange(ws, {"type": "session.history", "id": "h1", "sessionId": session_id})
        key = f"agent:default:{session_id}"
        by_key = await exchange(ws, {"type": "session.history", "id": "h2", "sessionId": key})

    assert by_id["type"] == "session.messages"
    assert by_id["requestId"] == "h1"
    assert by_id["sessionId"] == session_id
    shown = [
        (m["role"], m["content"], m["complete"], m.get("tokenCount")) for m in by_id["messages"]
    ]
    assert shown == [
        ("user", "hello", True, None),
        ("assistant", "Hi there", True, 7),
        ("user", "count", True, None),
        # Cut off after message_start's placeholder of 1: billed, and stored, at the
        # cl100k count of what was streamed (issue 15).
        ("assistant", "Counting: 1, ", False, max(1, TokenEstimator().count("Counting: 1, "))),
    ]
    # The user's messages have no token count, and the key is left out rather than null.
    assert "tokenCount" not in by_id["messages"][0]
    stored = [
        row["created_at"] for row in query(home, "SELECT created_at FROM messages ORDER BY id")
    ]
    assert [m["createdAt"] for m in by_id["messages"]] == stored
    assert all(ISO_MILLISECONDS.fullmatch(m["createdAt"]) for m in by_id["messages"])
    assert by_key["sessionId"] == session_id
    assert by_key["messages"] == by_id["messages"]


async def test_limit_keeps_the_latest_messages(chat_client) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "t1", "one")
        session_id = first[0]["sessionId"]
        await send_chat(ws, "t2", "two", sessionId=session_id)
        reply = await exchange(
            ws, {"type": "session.history", "id": "h", "sessionId": session_id, "limit": 3}
        )
        everything = await exchange(
            ws, {"type": "session.history", "id": "all", "sessionId": session_id}
        )

    assert [m["content"] for m in reply["messages"]] == ["Hello, world!", "two", "Hello, world!"]
    assert len(everything["messages"]) == 4


async def test_a_new_session_has_an_empty_history(chat_client, fake_anthropic) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario.unauthorized())
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "t1", "hello")
        session_id = frames[0]["sessionId"]
        reply = await exchange(ws, {"type": "session.history", "id": "h", "sessionId": session_id})
    assert frames[-1]["code"] == "AUTHENTICATION_FAILED"
    # The question is stored; no reply text ever arrived, so none is.
    assert [m["role"] for m in reply["messages"]] == ["user"]


async def test_an_unknown_session_is_session_not_found(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "session.history", "id": "h", "sessionId": "nope"})
    assert reply["type"] == "error"
    assert reply["code"] == "SESSION_NOT_FOUND"
    assert reply["requestId"] == "h"
    assert reply["details"] == {"sessionId": "nope"}


@pytest.mark.parametrize(
    ("limit", "problem"),
    [
        (0, "must be from 1 to 1000"),
        (1001, "must be from 1 to 1000"),
        (2.5, "expected an integer"),
        ("10", "expected an integer"),
        (True, "expected an integer"),
    ],
)
async def test_a_bad_limit_is_refused_against_its_field(
    client, limit: object, problem: str
) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(
            ws, {"type": "session.history", "id": "h", "sessionId": "x", "limit": limit}
        )
    assert reply["code"] == "INVALID_MESSAGE"
    [detail] = reply["details"]
    assert detail["field"] == "limit"
    assert problem in detail["message"]
