"""One WebSocket connection: what a handler sees, and the bounded queue of replies it sends.

Handlers call ``send`` and move on; a writer task drains the queue to the socket. A client
that stops reading lets the queue grow, so the queue is bounded: over the bound for
``slow_client_seconds`` (or ever over the byte cap) the connection is closed with 1008.

Text deltas of a stream that arrive while the previous one still waits in the queue are
joined to it, and written as one frame: a client joins deltas anyway, and each frame is a
system call (7 us here, a fifth of the relay's cost per delta). A writer that keeps up sends
every delta as it came; one that falls behind sends fewer, longer ones, never later.
"""

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from attrs import frozen

from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.messages import ErrorMessage, ServerMessage
from agentspace_gateway.protocol.wire import WireCodec
from agentspace_gateway.storage.client_keys import ClientKey

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 1.0


@frozen
class OutboundLimits:
    max_messages: int
    max_bytes: int
    slow_client_seconds: float


class _Deltas:
    """Consecutive text deltas of one stream, still queued: one frame when written."""

    __slots__ = ("frame", "parts", "size")

    def __init__(self, frame: Callable[[str], str], text: str) -> None:
        self.frame = frame
        self.parts = [text]
        self.size = utf8_length(text) + _DELTA_FRAME_OVERHEAD

    def render(self) -> str:
        return self.frame(self.parts[0] if len(self.parts) == 1 else "".join(self.parts))


def utf8_length(text: str) -> int:
    """Bytes ``text`` takes on the wire. The cap is in bytes: counted in characters, a flood
    of 4-byte characters held 67 MB against the documented 16 MiB. ``isascii`` is O(1) in
    CPython, so the common case costs no encoding; a lone surrogate counts 3 bytes."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# Roughly what a delta frame adds to its text (type, requestId, quotes): for the byte cap.
_DELTA_FRAME_OVERHEAD = 80
# A joined frame stops growing here: clients cap their frames too (aiohttp's at 4 MiB).
MAX_JOINED_DELTA_CHARS = 64 * 1024


class ConnectionContext:
    """What every handler receives beside its message.

    ``app`` gives the application's typed state (repositories, config); ``send`` queues a
    server message. What a room keeps per connection (chat's running stream) it keeps in
    its own registry, keyed by this object.
    """

    def __init__(
        self,
        *,
        connection_id: str,
        peer: str | None,
        app: web.Application,
        request: web.Request,
        socket: web.WebSocketResponse,
        codec: WireCodec,
        limits: OutboundLimits,
    ) -> None:
        self.id = connection_id
        self.peer = peer
        # The client key the connection proved, if that was its credential: it then sees and
        # spends only in that client's sessions. None: the owner (token, console cookie).
        self.client: ClientKey | None = None
        self.app = app
        self.request = request
        self._socket = socket
        self._codec = codec
        self._limits = limits
        # Whole messages wait encoded, so they are counted in bytes and encoded only once.
        self._queue: collections.deque[bytes | _Deltas] = collections.deque()
        self._queued_bytes = 0
        self._pending = 0
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._over_since: float | None = None
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closing or self._socket.closed

    def send(self, message: ServerMessage) -> None:
        """Queue a message for this client. Never blocks; a closed connection drops it."""
        self.send_text(self._codec.encode(message))

    def send_error(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        request_id: str | None = None,
        details: Any = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        self.send(
            ErrorMessage(
                code=str(code),
                message=message,
                request_id=request_id,
                details=details,
                retryable=retryable,
                retry_after_ms=retry_after_ms,
            )
        )

    def send_gateway_error(self, error: GatewayError, request_id: str | None) -> None:
        self.send_error(
            error.code,
            error.message,
            request_id=request_id,
            details=error.details,
            retryable=error.retryable,
            retry_after_ms=error.retry_after_ms,
        )

    def send_text(self, text: str) -> None:
        if self.closed:
            return
        data = self._utf8(text)
        self._queue.append(data)
        self._queued(len(data))

    def send_delta(self, frame: Callable[[str], str], text: str) -> None:
        """Queue a text delta whose frame ``frame`` builds (the same function for every delta
        of a stream); joined to the stream's previous delta if that one is not written yet."""
        if self.closed:
            return
        last = self._queue[-1] if self._queue else None
        if isinstance(last, _Deltas) and last.frame is frame and last.size < MAX_JOINED_DELTA_CHARS:
            last.parts.append(text)
            size = utf8_length(text)
            last.size += size
            self._queued(size)
            return
        deltas = _Deltas(frame, text)
        self._queue.append(deltas)
        self._queued(deltas.size)

    def _queued(self, size: int) -> None:
        self._queued_bytes += size
        self._pending += 1
        self._drained.clear()
        self._wakeup.set()
        if self._queued_bytes > self._limits.max_bytes:
            self._close_slow(f"{self._queued_bytes} bytes pending, over the cap")
        elif self._pending > self._limits.max_messages and self._over_since is None:
            self._over_since = time.monotonic()
            asyncio.get_running_loop().call_later(
                self._limits.slow_client_seconds, self._check_slow
            )

    def start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    async def stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def flush(self, within: float) -> None:
        """Wait, at most ``within`` seconds, until everything queued so far is written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), within)

    async def close(self, code: int, reason: str) -> None:
        self._closing = True
        await self.flush(CLOSE_TIMEOUT_SECONDS)
        await self._close_socket(code, reason)

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._queue:
                    self._drained.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue.popleft()
                if isinstance(item, _Deltas):
                    self._queued_bytes -= item.size
                    self._pending -= len(item.parts)
                    data = self._utf8(item.render())
                else:
                    self._queued_bytes -= len(item)
                    self._pending -= 1
                    data = item
                if self._socket.closed:
                    continue
                await self._socket.send_frame(data, WSMsgType.TEXT)
                if self._pending <= self._limits.max_messages:
                    self._over_since = None
        except ConnectionError:
            pass
        finally:
            # Nothing more will be written; whoever waits for a flush must not wait on.
            self._queue.clear()
            self._queued_bytes = self._pending = 0
            self._drained.set()

    def _utf8(self, text: str) -> bytes:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate in a reply (a plugin echoing what it was sent) must cost a
            # character, not the writer task and with it the connection.
            log.warning(
                "connection %s: a reply held a lone surrogate, not Unicode; sent with '?' for it",
                self.id,
            )
            return text.encode("utf-8", errors="replace")

    def _check_slow(self) -> None:
        if self._over_since is None or self.closed:
            return
        waited = time.monotonic() - self._over_since
        if waited >= self._limits.slow_client_seconds:
            self._close_slow(f"over {self._limits.max_messages} messages pending for {waited:.1f}s")
        else:
            asyncio.get_running_loop().call_later(
                self._limits.slow_client_seconds - waited, self._check_slow
            )

    def _close_slow(self, why: str) -> None:
        if self._closing:
            return
        log.warning(
            "closing connection %s from %s: client is not reading (%s; %d messages pending)",
            self.id,
            self.peer,
            why,
            self._pending,
        )
        self._closing = True
        self._queue.clear()
        self._queued_bytes = self._pending = 0
        asyncio.get_running_loop().create_task(
            self._close_socket(WSCloseCode.POLICY_VIOLATION, "client too slow")
        )

    async def _close_socket(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(
                self._socket.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_SECONDS
            )
        except (TimeoutError, ConnectionError):
            # The peer is not reading, so even the close frame cannot be written.
            transport = self.request.transport
            if transport is not None:
                transport.abort()
