"""SIGTERM (or Ctrl-C) while replies stream: each ends with SERVER_SHUTTING_DOWN, its data is
kept, and the gateway exits cleanly within its shutdown timeout."""

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from agentspace_gateway.gateway import close_all
from agentspace_gateway.gateway.keys import SHUTDOWN
from agentspace_gateway.home import Home
from agentspace_gateway.tokens import TokenEstimator

from chat_helpers import kinds, messages, send_chat, usage_rows
from fake_anthropic import Scenario, count_input_tokens
from reliability_helpers import (
    StreamRecord,
    exchange_rows,
    gateway_running,
    wait_for_exit,
)
from wsclient import receive, request

SHUTDOWN_TIMEOUT = 5.0
CLIENTS = 3


async def mid_stream(ws: aiohttp.ClientWebSocketResponse, record: StreamRecord) -> None:
    """Send the chat.send and read until two deltas have come."""
    await request(ws, {"type": "chat.send", "id": record.request_id, "content": record.content})
    while sum(f["type"] == "chat.stream.delta" for f in record.frames) < 2:
        record.frames.append(await receive(ws))


async def rest_of(ws: aiohttp.ClientWebSocketResponse, record: StreamRecord) -> int | None:
    """Everything after the signal, up to the close; returns the close code."""
    async for frame in ws:
        if frame.type is aiohttp.WSMsgType.TEXT:
            record.frames.append(frame.json())
    return ws.close_code


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["sigterm", "ctrl-c-twice"],
)
async def test_stopping_ends_streams_with_a_clear_error_and_keeps_their_data(
    tmp_path: Path, fake_anthropic, signals: list[signal.Signals]
) -> None:
    fake, base_url = fake_anthropic
    fake.default = Scenario(endless=True, text_chunks=["tick "], delay_between_chunks=0.02)
    home = tmp_path / "home"
    records = [StreamRecord(f"s{n}", f"stream number {n} " + "x" * 40 * n) for n in range(CLIENTS)]

    async with (
        gateway_running(
            home,
            tmp_path,
            base_url,
            AGENTSPACE_SERVER_SHUTDOWN_TIMEOUT_SECONDS=str(SHUTDOWN_TIMEOUT),
        ) as gateway,
        aiohttp.ClientSession() as http,
    ):
        sockets = [await http.ws_connect(gateway.url) for _ in records]
        await asyncio.gather(*(mid_stream(ws, r) for ws, r in zip(sockets, records, strict=True)))
        assert (home / "runtime.json").exists()

        # Reading all along, as a client would: one that lags may find the socket already
        # closed when it answers the close frame, and aiohttp then reports 1006.
        reading = asyncio.gather(*(rest_of(ws, r) for ws, r in zip(sockets, records, strict=True)))
        signalled = time.monotonic()
        for signum in signals:
            # An impatient second one must not cut the shutdown short.
            gateway.process.send_signal(signum)
            await asyncio.sleep(0.01)
        codes = await reading
        returncode = await wait_for_exit(gateway, timeout=SHUTDOWN_TIMEOUT + 10)
        took = time.monotonic() - signalled
        output = gateway.output()

    assert returncode == 0, output
    assert took < SHUTDOWN_TIMEOUT, f"shutdown took {took:.2f} s"
    assert not (home / "runtime.json").exists()
    assert "Traceback" not in output, output
    assert codes == [1001] * CLIENTS, (codes, [r.frames[-2:] for r in records], output)
    sent = {
        reply.request.json["messages"][-1]["content"]: count_input_tokens(reply.request.json)
        for reply in fake.replies
    }
    for record in records:
        error = record.error
        assert error is not None, record.frames[-3:]
        assert record.frames[-1] is error  # the error is the stream's last word
        assert (error["code"], error["requestId"]) == ("SERVER_SHUTTING_DOWN", record.request_id)
        assert error["retryable"] is True
        assert record.end is None
        stored = exchange_rows(home / "agentspace.db", record.content)
        [reply] = stored["replies"]
        assert (reply["content"], reply["complete"]) == (record.text, 0)
        [usage] = stored["usage"]
        # Every token Anthropic reported (message_start's counts) is billed, and as output
        # the larger of its placeholder 1 and the estimate of the text streamed.
        streamed = TokenEstimator().count(record.text)
        billed = max(1, streamed)
        assert (usage["input_tokens"], usage["output_tokens"]) == (sent[record.content], billed)
        assert usage["output_estimated"] == int(streamed > 1)
        assert reply["token_count"] == billed
        # The error frame carries what the stopped request was billed.
        assert error["usage"]["outputTokens"] == billed
        assert error["usage"].get("estimated", False) is (streamed > 1)
        assert error["cost"]["totalCostNanos"] == usage["cost_nanousd"]
        assert usage["cost_nanousd"] > 0
        assert usage["stop_reason"] == "shutdown"
    assert len(fake.replies) == CLIENTS
    assert all(reply.outcome == "disconnected" for reply in fake.replies)
    print(f"\n{CLIENTS} streams ended, stored and the process gone {took:.2f} s after the signal")


async def test_a_chat_send_once_shutdown_has_begun_is_refused(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    async with chat_client.ws_connect("/gateway") as ws:
        chat_client.server.app[SHUTDOWN].begin()
        frames = await send_chat(ws, "late", "too late")

    assert kinds(frames) == ["session.created", "error"]
    assert (frames[-1]["code"], frames[-1]["requestId"]) == ("SERVER_SHUTTING_DOWN", "late")
    assert fake.message_requests == []
    # As with NO_API_KEY, the message is already in the session.
    assert messages(home) == [("user", "too late", 1)]


async def test_a_stream_still_waiting_for_anthropic_ends_cleanly_at_shutdown(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(delay_before_stream=30.0))
    app = chat_client.server.app
    ws = await chat_client.ws_connect("/gateway")
    await request(ws, {"type": "chat.send", "id": "w", "content": "slow to start"})
    frames = [await receive(ws), await receive(ws)]  # session.created, chat.stream.start
    await fake.wait_for_requests(1)

    # As aiohttp's shutdown would, while this client keeps reading (and answers the close).
    closing = asyncio.create_task(close_all(app))
    async for frame in ws:
        if frame.type is aiohttp.WSMsgType.TEXT:
            frames.append(frame.json())
    await closing

    assert kinds(frames) == ["session.created", "chat.stream.start", "error"]
    assert frames[-1]["code"] == "SERVER_SHUTTING_DOWN"
    assert ws.close_code == 1001
    await fake.wait_for_disconnect(timeout=5.0)  # raises unless the request was closed
    [closed] = fake.disconnects
    assert closed.outcome == "disconnected"
    # Anthropic had reported nothing, so there is no reply and nothing billed.
    assert messages(home) == [("user", "slow to start", 1)]
    assert usage_rows(home) == []
