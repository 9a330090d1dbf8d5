"""One streamed reply, timed the same way through the gateway and straight from the SDK.

Times are ``time.perf_counter()`` in this process: from just before the request leaves to
the first and the last text delta read by the client.
"""

import json
import time
from typing import Any

import attrs
from aiohttp import ClientWebSocketResponse, WSMsgType
from anthropic import AsyncAnthropic

MODEL = "claude-sonnet-4-5"
MAX_TOKENS = 4096
# The gateway writes every delta frame with this prefix; matching it spares the client a
# JSON parse per delta, so the client is not what the relay measurement measures.
DELTA_PREFIX = '{"type":"chat.stream.delta"'
REPLY_TIMEOUT_SECONDS = 60.0


@attrs.define
class StreamTiming:
    started: float
    first_delta: float | None = None
    last_delta: float | None = None
    deltas: int = 0
    frames: int = 0  # delta frames received (through the gateway, fewer when joined)
    output_tokens: int | None = None
    session_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.first_delta is not None

    @property
    def to_first(self) -> float:
        assert self.first_delta is not None
        return self.first_delta - self.started

    @property
    def to_last(self) -> float:
        assert self.last_delta is not None
        return self.last_delta - self.started

    @property
    def steady_rate(self) -> float:
        """Deltas a second between the first and the last: the relay rate, set-up excluded."""
        assert self.first_delta is not None
        assert self.last_delta is not None
        span = self.last_delta - self.first_delta
        return (self.deltas - 1) / span if span > 0 else 0.0


def chunks(count: int) -> list[str]:
    """Text deltas the size Claude streams (a word or two), all different.

    Each ends in its only space, by which a client counts them: the gateway joins deltas
    that queue up behind a busy writer into one frame (docs/protocol.md), so frames and
    upstream deltas need not be one to one.
    """
    return [f"word{index % 997} " for index in range(count)]


async def send(ws: ClientWebSocketResponse, message: dict[str, Any]) -> None:
    await ws.send_str(json.dumps(message, separators=(",", ":")))


async def receive_json(ws: ClientWebSocketResponse, timeout: float) -> dict[str, Any]:
    frame = await ws.receive(timeout=timeout)
    if frame.type is not WSMsgType.TEXT:
        raise ConnectionError(f"expected a text frame, got {frame.type.name}: {frame.data!r}")
    data: dict[str, Any] = json.loads(frame.data)
    return data


async def call(
    ws: ClientWebSocketResponse, message: dict[str, Any], timeout: float = REPLY_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Send a request and return the frame that answers it (others are skipped)."""
    await send(ws, message)
    while True:
        reply = await receive_json(ws, timeout)
        if reply.get("requestId") == message["id"]:
            return reply


async def gateway_stream(
    ws: ClientWebSocketResponse, request_id: str, session_id: str | None = None
) -> StreamTiming:
    """chat.send through the gateway, read to its chat.stream.end (or error)."""
    message: dict[str, Any] = {"type": "chat.send", "id": request_id, "content": "Go on."}
    if session_id is not None:
        message["sessionId"] = session_id
    timing = StreamTiming(started=time.perf_counter())
    await send(ws, message)
    while True:
        frame = await ws.receive(timeout=REPLY_TIMEOUT_SECONDS)
        now = time.perf_counter()
        if frame.type is not WSMsgType.TEXT:
            timing.error = f"connection: {frame.type.name} {frame.data!r}"
            return timing
        text: str = frame.data
        if text.startswith(DELTA_PREFIX):
            if timing.first_delta is None:
                timing.first_delta = now
            timing.last_delta = now
            # The compact frame's only spaces are the words' (see chunks()).
            timing.deltas += text.count(" ")
            timing.frames += 1
            continue
        data = json.loads(text)
        kind = data.get("type")
        if kind == "session.created" or kind == "chat.stream.start":
            timing.session_id = data["sessionId"]
        elif kind == "chat.stream.end" and data.get("requestId") == request_id:
            timing.output_tokens = data["usage"]["outputTokens"]
            return timing
        elif kind == "error" and data.get("requestId") == request_id:
            timing.error = f"{data['code']}: {data['message']}"
            return timing


async def direct_stream(client: AsyncAnthropic, *, helper: bool = False) -> StreamTiming:
    """The same request straight to the upstream with the SDK, as a client without us would.

    ``helper`` uses ``messages.stream()``, the SDK's accumulating helper; otherwise the raw
    event stream of ``messages.create(stream=True)``, the least work the SDK can do.
    """
    messages: Any = [{"role": "user", "content": "Go on."}]
    system = "You are a helpful AI assistant."
    timing = StreamTiming(started=time.perf_counter())
    try:
        if helper:
            async with client.messages.stream(
                model=MODEL, max_tokens=MAX_TOKENS, system=system, messages=messages
            ) as stream:
                async for event in stream:
                    _note_event(timing, event)
        else:
            raw = await client.messages.create(
                model=MODEL, max_tokens=MAX_TOKENS, system=system, messages=messages, stream=True
            )
            async with raw:
                async for raw_event in raw:
                    _note_event(timing, raw_event)
    except Exception as error:
        timing.error = f"{type(error).__name__}: {error}"
    return timing


def _note_event(timing: StreamTiming, event: Any) -> None:
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        now = time.perf_counter()
        if timing.first_delta is None:
            timing.first_delta = now
        timing.last_delta = now
        timing.deltas += 1
    elif event.type == "message_delta":
        timing.output_tokens = event.usage.output_tokens
