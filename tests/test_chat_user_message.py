"""The user's message is stored while the request goes upstream, and still comes first:
before chat.stream.start reaches the client, before the reply and before its usage.

Each test holds the message's write (or fails it) at a chosen moment, through the app's own
MessageRepository, while the real SDK streams from the fake upstream: what the client sees,
what the fake was sent and what the database holds must not depend on which finishes first.
"""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.home import Home

from chat_helpers import (
    closed_usage_rows,
    deltas,
    eventually,
    kinds,
    messages,
    query,
    send_chat,
    until_end,
    usage_rows,
)
from fake_anthropic import Scenario
from wsclient import exchange, receive, request

# How long the fake upstream may take to see the gateway close a request: generous for a
# loaded machine; a request that is never closed still fails the test.
DISCONNECT_WAIT = 5.0


def hold_user_message(
    app: web.Application,
    monkeypatch: pytest.MonkeyPatch,
    before: Callable[[], Awaitable[object]],
) -> asyncio.Event:
    """Run ``before`` ahead of the user message's write (into a new session, or one named
    by its id: ``append_if_visible``); the event is set once it is stored."""
    repository = app[appkeys.MESSAGES]
    stored = asyncio.Event()
    for name in ("append", "append_if_visible"):
        original = getattr(repository, name)

        async def add(*args: Any, original: Any = original, **kwargs: Any) -> Any:
            await before()
            row = await original(*args, **kwargs)
            stored.set()
            return row

        monkeypatch.setattr(repository, name, add)
    return stored


def watch_replies(app: web.Application, home: Home, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """For each reply recorded: how many user messages with its exchange id were stored by then."""
    recorder = app[CHAT].metering.recorder
    original = recorder.record
    seen: list[int] = []

    async def record(message: Any, usage: Any, **options: Any) -> Any:
        exchange_id = (message or usage).request_id
        rows = query(
            home,
            "SELECT count(*) AS n FROM messages WHERE role = 'user' AND request_id = ?",
            (exchange_id,),
        )
        seen.append(rows[0]["n"])
        return await original(message, usage, **options)

    monkeypatch.setattr(recorder, "record", record)
    return seen


async def settle_upstream(fake: Any) -> None:
    """The request has reached the fake, and its reply has had time to stream there."""
    await fake.wait_for_requests(1)
    await asyncio.sleep(0.1)


async def nothing_more(ws: Any) -> None:
    try:
        frame = await ws.receive(timeout=0.1)
    except TimeoutError:
        return
    pytest.fail(f"the client got {frame!r} before its message was stored")


async def test_the_request_goes_upstream_before_the_message_is_stored_and_start_after_it(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["al", "l the", " way"], input_tokens=9))
    app = chat_client.server.app
    release = asyncio.Event()
    hold_user_message(app, monkeypatch, release.wait)
    recorded = watch_replies(app, home, monkeypatch)

    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "how far?"})
        frames = [await receive(ws)]  # session.created
        # Upstream, the whole reply has streamed; the client hears of it only once the
        # message is stored (a client that saw chat.stream.start can count on the message).
        await settle_upstream(fake)
        await nothing_more(ws)
        assert messages(home) == []
        assert closed_usage_rows(home) == []
        release.set()
        frames += await until_end(ws, "s")

    assert kinds(frames)[:2] == ["session.created", "chat.stream.start"]
    assert deltas(frames) == "all the way"
    assert frames[-1]["type"] == "chat.stream.end"
    assert recorded == [1]  # the reply and usage were recorded with the message already there
    assert messages(home) == [("user", "how far?", 1), ("assistant", "all the way", 1)]
    [row] = usage_rows(home)
    [user_row] = query(home, "SELECT request_id FROM messages WHERE role = 'user'")
    assert row["request_id"] == user_row["request_id"]
    assert row["input_tokens"] == 9


async def test_the_history_sent_carries_the_new_message_exactly_once(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["first answer"]), Scenario(text_chunks=["second answer"]))
    app = chat_client.server.app
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "a", "first question")
        session_id = first[0]["sessionId"]

        history = app[appkeys.MESSAGES]
        # The read a chat.send makes of its session and history (one trip), held until the
        # new message is stored ahead of it.
        read = history.session_and_recent
        history_read = asyncio.Event()
        hold_user_message(app, monkeypatch, history_read.wait)

        async def session_and_recent(*args: Any, **kwargs: Any) -> Any:
            rows = await read(*args, **kwargs)
            history_read.set()
            return rows

        monkeypatch.setattr(history, "session_and_recent", session_and_recent)
        second = await send_chat(ws, "b", "second question", sessionId=session_id)

    assert second[-1]["type"] == "chat.stream.end"
    sent = fake.message_requests[-1].json["messages"]
    assert sent == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    assert [m[:2] for m in messages(home)] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
    ]


@pytest.mark.parametrize("when", ["at-once", "mid-stream"])
async def test_a_message_that_cannot_be_stored_stops_the_request_and_keeps_nothing(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    fake, _ = fake_anthropic
    if when == "mid-stream":
        fake.enqueue(
            Scenario(endless=True, text_chunks=["word "], delay_between_chunks=0.01, input_tokens=5)
        )
    app = chat_client.server.app
    streaming = asyncio.Event()
    failures = []

    async def fail() -> None:
        if when == "mid-stream":
            await streaming.wait()
        failures.append(when)
        raise sqlite3.OperationalError("disk I/O error")

    repository = app[appkeys.MESSAGES]
    working = {name: getattr(repository, name) for name in ("append", "append_if_visible")}
    hold_user_message(app, monkeypatch, fail)

    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "x", "content": "remember this"})
        frames = [await receive(ws)]  # session.created
        if when == "mid-stream":
            await settle_upstream(fake)  # the reply is streaming upstream, held back here
            streaming.set()
        frames += await until_end(ws, "x")
        if when == "mid-stream":
            # The request was closed by the gateway (raises if no disconnect comes).
            await fake.wait_for_disconnect(timeout=DISCONNECT_WAIT)
            [closed] = fake.disconnects
            assert closed.outcome == "disconnected"
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
        for name, method in working.items():
            monkeypatch.setattr(repository, name, method)
        fake.enqueue(Scenario(text_chunks=["fine"]))
        again = await send_chat(ws, "y", "and now?", sessionId=frames[0]["sessionId"])

    error = frames[-1]
    assert (error["type"], error["code"], error["requestId"]) == (
        "error",
        "STORAGE_UNAVAILABLE",
        "x",
    )
    assert "could not be stored" in error["message"]
    assert "send it again" in error["message"]
    # A storage failure is the machine's state: its cause and next step are on the wire.
    assert "(disk I/O error). Check the disk" in error["message"]
    assert error["details"] == {"kind": "unknown"}
    assert "retryable" not in error
    assert failures == [when]
    # Never a chat.stream.start: that promises the message is kept.
    assert kinds(frames) == ["session.created", "error"]
    if when == "at-once":
        # Failed before the request was made: it never was.
        assert len(fake.message_requests) == 1  # only "and now?"
    else:
        assert len(fake.message_requests) == 2
    assert again[-1]["type"] == "chat.stream.end"
    # No reply without its message; but tokens Anthropic billed are in the ledger.
    assert messages(home) == [("user", "and now?", 1), ("assistant", "fine", 1)]
    rows = usage_rows(home)
    if when == "at-once":
        assert len(rows) == 1  # nothing went upstream, nothing was billed
    else:
        failed, fine = rows
        assert (failed["stop_reason"], failed["input_tokens"]) == ("message_not_stored", 5)
        assert failed["cost_nanousd"] > 0
        assert fine["stop_reason"] == "end_turn"


async def test_chat_cancel_while_the_message_is_being_stored_closes_the_request(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(endless=True, text_chunks=["tick "], delay_between_chunks=0.01, input_tokens=3)
    )
    app = chat_client.server.app
    release = asyncio.Event()
    hold_user_message(app, monkeypatch, release.wait)

    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "count"})
        await settle_upstream(fake)
        await request(ws, {"type": "chat.cancel", "id": "c", "requestId": "s"})
        # Closed upstream while the message's write is still held.
        await fake.wait_for_disconnect(timeout=DISCONNECT_WAIT)
        [closed] = fake.disconnects
        assert closed.outcome == "disconnected"
        assert messages(home) == []
        release.set()
        after = await until_end(ws, "s")

    assert kinds(after)[:2] == ["session.created", "chat.stream.start"]
    assert after[-1]["type"] == "chat.stream.end"
    assert after[-1]["stopReason"] == "cancelled"
    streamed = deltas(after)
    assert streamed.startswith("tick ")  # what streamed upstream meanwhile, held, then sent
    assert messages(home) == [("user", "count", 1), ("assistant", streamed, 0)]
    [row] = usage_rows(home)
    assert (row["input_tokens"], row["stop_reason"]) == (3, "cancelled")


async def test_a_client_leaving_while_the_message_is_being_stored_closes_the_request(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(endless=True, text_chunks=["word "], delay_between_chunks=0.01, input_tokens=4)
    )
    app = chat_client.server.app
    release = asyncio.Event()
    hold_user_message(app, monkeypatch, release.wait)

    ws = await chat_client.ws_connect("/gateway")
    await request(ws, {"type": "chat.send", "id": "s", "content": "keep going"})
    await settle_upstream(fake)
    await ws.close()
    await fake.wait_for_disconnect(timeout=DISCONNECT_WAIT)
    [closed] = fake.disconnects
    assert closed.outcome == "disconnected"
    assert messages(home) == []
    release.set()
    await eventually(lambda: closed_usage_rows(home))

    stored = messages(home)
    assert stored[0] == ("user", "keep going", 1)
    role, text, complete = stored[1]
    assert (role, complete) == ("assistant", 0)
    assert text.startswith("word ")  # what streamed before the client left
    [row] = usage_rows(home)
    assert (row["input_tokens"], row["stop_reason"]) == (4, "cancelled")


async def test_a_handler_cancelled_twice_still_keeps_the_reply_and_its_usage(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp may cancel a handler a second time at a forced shutdown; what was streamed
    and billed must still be written whole."""
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["all", " of", " it"], input_tokens=9, output_tokens=7))
    app = chat_client.server.app
    repository = app[appkeys.MESSAGES]
    original = repository.append
    release = asyncio.Event()

    async def add(*args: Any, **kwargs: Any) -> Any:
        write = asyncio.ensure_future(original(*args, **kwargs))  # asked for at once...
        await release.wait()  # ...and heard back late, as when a commit's fsync is slow
        return await write

    monkeypatch.setattr(repository, "append", add)
    before = asyncio.all_tasks()
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "q"})
        await settle_upstream(fake)  # the whole reply has streamed upstream
        [handler] = [
            task
            for task in asyncio.all_tasks() - before
            if getattr(task.get_coro(), "__qualname__", "").endswith("dispatch")
        ]
        handler.cancel()
        await asyncio.sleep(0.05)  # now waiting for the message before keeping the reply
        assert not handler.done()
        handler.cancel()
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(handler, return_exceptions=True)

    # The reply had ended upstream before the cancels: kept complete, with its final usage.
    assert messages(home) == [("user", "q", 1), ("assistant", "all of it", 1)]
    [row] = usage_rows(home)
    assert (row["input_tokens"], row["output_tokens"], row["stop_reason"]) == (9, 7, "end_turn")


async def test_a_message_into_a_named_session_that_cannot_be_stored_never_goes_upstream(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["first answer"]))
    app = chat_client.server.app
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "a", "first question")

        async def fail() -> None:
            raise sqlite3.OperationalError("disk I/O error")

        # Its write is begun before the session is read, and fails before the read is back.
        hold_user_message(app, monkeypatch, fail)
        frames = await send_chat(ws, "b", "second question", sessionId=first[0]["sessionId"])

    assert kinds(frames) == ["error"]
    assert (frames[0]["code"], frames[0]["requestId"]) == ("STORAGE_UNAVAILABLE", "b")
    assert len(fake.message_requests) == 1  # only the first question's
    assert messages(home) == [("user", "first question", 1), ("assistant", "first answer", 1)]
    assert len(usage_rows(home)) == 1
