"""Deltas that queue up behind a busy writer go out joined, in order, as one frame."""

import asyncio
import json
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from agentspace_gateway.chat.frames import delta_frame
from agentspace_gateway.gateway.connection import (
    MAX_JOINED_DELTA_CHARS,
    ConnectionContext,
    OutboundLimits,
)
from agentspace_gateway.protocol.connection_messages import Ping
from agentspace_gateway.protocol.wire import WireCodec


class HeldSocket:
    """Stands in for the WebSocketResponse: each frame waits until the test lets it go."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self.gate = asyncio.Event()
        self.writing = asyncio.Event()
        self.closing = asyncio.Event()

    async def send_frame(self, data: bytes, opcode: WSMsgType) -> None:
        assert opcode is WSMsgType.TEXT
        self.writing.set()
        await self.gate.wait()
        self.frames.append(data.decode())

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed = True
        self.close_code = code
        self.closing.set()


def connection(socket: HeldSocket, **limits: Any) -> ConnectionContext:
    bounds = {"max_messages": 1000, "max_bytes": 16 * 1024 * 1024, "slow_client_seconds": 30.0}
    bounds.update(limits)
    context = ConnectionContext(
        connection_id="c1",
        peer="127.0.0.1",
        app=web.Application(),
        request=None,  # type: ignore[arg-type]  # only used to abort a dead transport
        socket=socket,  # type: ignore[arg-type]
        codec=WireCodec([Ping]),
        limits=OutboundLimits(**bounds),
    )
    return context


def deltas_of(frames: list[str]) -> list[str]:
    return [json.loads(frame)["delta"] for frame in frames if "chat.stream.delta" in frame]


async def test_deltas_queued_behind_a_busy_writer_are_joined_in_order() -> None:
    socket = HeldSocket()
    context = connection(socket)
    frame = delta_frame("r1")
    context.send_delta(frame, "one ")
    await socket.writing.wait()  # "one " is being written, and held there
    for word in ("two ", "three ", "four "):
        context.send_delta(frame, word)
    context.send_text('{"type":"pong","requestId":"p"}')
    context.send_delta(frame, "five")  # after another message: not joined across it

    socket.gate.set()
    await context.flush(5.0)
    await context.stop_writer()

    assert deltas_of(socket.frames) == ["one ", "two three four ", "five"]
    assert json.loads(socket.frames[2]) == {"type": "pong", "requestId": "p"}
    assert json.loads(socket.frames[1])["requestId"] == "r1"


async def test_each_joined_delta_still_counts_for_the_slow_client_bound() -> None:
    socket = HeldSocket()
    context = connection(socket, max_messages=2, slow_client_seconds=0.05)
    frame = delta_frame("r1")
    context.send_delta(frame, "one ")
    await socket.writing.wait()  # "one " is being written, and held there
    for word in ("two ", "three ", "four "):
        context.send_delta(frame, word)  # one frame when written, but three messages

    await asyncio.wait_for(socket.closing.wait(), 5.0)
    assert socket.close_code == WSCloseCode.POLICY_VIOLATION
    socket.gate.set()
    await context.stop_writer()


async def test_a_writer_that_keeps_up_sends_every_delta_as_it_came() -> None:
    socket = HeldSocket()
    socket.gate.set()
    context = connection(socket)
    frame = delta_frame("r1")
    for word in ("a", "b", "c"):
        context.send_delta(frame, word)
        await context.flush(5.0)
    await context.stop_writer()

    assert deltas_of(socket.frames) == ["a", "b", "c"]


async def test_deltas_of_another_stream_are_not_joined() -> None:
    socket = HeldSocket()
    context = connection(socket)
    first, second = delta_frame("r1"), delta_frame("r2")
    context.send_delta(first, "x")
    await socket.writing.wait()
    context.send_delta(first, "1")
    context.send_delta(second, "2")
    context.send_delta(second, "3")

    socket.gate.set()
    await context.flush(5.0)
    await context.stop_writer()

    owners = [json.loads(frame)["requestId"] for frame in socket.frames]
    assert owners == ["r1", "r1", "r2"]
    assert deltas_of(socket.frames) == ["x", "1", "23"]


async def test_a_joined_frame_stops_growing_at_its_cap() -> None:
    socket = HeldSocket()
    context = connection(socket)
    frame = delta_frame("r1")
    context.send_delta(frame, "start")
    await socket.writing.wait()
    chunk = "y" * 1000
    count = 3 * MAX_JOINED_DELTA_CHARS // len(chunk)
    for _ in range(count):
        context.send_delta(frame, chunk)

    socket.gate.set()
    await context.flush(5.0)
    await context.stop_writer()

    joined = deltas_of(socket.frames)[1:]
    assert "".join(joined) == chunk * count
    assert len(joined) >= 3
    assert all(len(text) <= MAX_JOINED_DELTA_CHARS + len(chunk) for text in joined)


async def test_a_client_that_stops_reading_a_stream_is_still_closed_in_time() -> None:
    socket = HeldSocket()  # never lets a frame go: a client that stopped reading
    context = connection(socket, max_messages=16, slow_client_seconds=0.2)
    frame = delta_frame("r1")
    for index in range(100):
        context.send_delta(frame, f"w{index} ")

    await asyncio.wait_for(socket.closing.wait(), 5)
    await context.stop_writer()

    # Joined into a frame or two, the deltas still counted one by one against the bound.
    assert socket.close_code == WSCloseCode.POLICY_VIOLATION


async def test_a_frame_sent_while_nothing_waits_is_written_before_the_sender_yields() -> None:
    socket = HeldSocket()
    socket.gate.set()
    context = connection(socket)
    frame = delta_frame("r1")
    context.send_delta(frame, "a")
    assert deltas_of(socket.frames) == ["a"]  # written by the caller, no loop turn
    context.send_delta(frame, "b")  # the same turn: waits for its end, to be joined
    context.send_delta(frame, "c")
    assert deltas_of(socket.frames) == ["a"]

    await asyncio.sleep(0)
    assert deltas_of(socket.frames) == ["a", "bc"]
    await context.stop_writer()
