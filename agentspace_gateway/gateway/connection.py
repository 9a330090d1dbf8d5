"""One WebSocket connection: what a handler sees, and the bounded queue of replies it sends.

Handlers call ``send`` and move on. A frame sent while nothing waits is written at once, by
the caller: aiohttp's ``send_frame`` only waits when the transport is paused (the client is
not reading) or a large compressed frame goes to the executor, and a writer task per frame
(an event, a future and a loop turn each) was a tenth of a chat's CPU. What must wait is
queued; a writer task exists only while something does, and ends once the queue is drained,
so an idle connection holds no task (the collector walks every object a connection keeps,
and a full collection with 1,000 of them open stalled the loop). A client that stops
reading lets the queue grow, so the queue is bounded: over the bound for
``slow_client_seconds`` (or ever over the byte cap) the connection is closed with 1008.

Text deltas of a stream that arrive while the previous one still waits in the queue are
joined to it, and written as one frame: a client joins deltas anyway, and each frame is a
system call (7 us here, a fifth of the relay's cost per delta). After a frame written at
once, what else is sent in the same loop turn (a burst parsed from one upstream read) is
queued, joined, and written when the turn ends. A writer that keeps up sends every delta as
it came; one that falls behind sends fewer, longer ones, never later.
"""

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Generator
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


class _Rest:
    """What is left of a coroutine that ran in its caller up to its first wait: awaited in a
    task, it goes on from there (Python 3.11 has no eager tasks to do this)."""

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coroutine = coroutine
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # a cancellation, passed on to the coroutine
                try:
                    waiting = coroutine.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    waiting = coroutine.send(sent)
                except StopIteration:
                    return


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
        # The frame a writer task is finishing: still held, so it counts against the byte cap.
        self._in_flight = 0
        self._pending = 0
        self._over_since: float | None = None
        self._closing = False
        # Only while a frame waits for the transport, and until the queue behind it is drained.
        self._writer: asyncio.Task[None] | None = None
        # A frame was written at once in this loop turn: what follows in it is queued, to be
        # joined, until the turn ends.
        self._turn_taken = False

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
        if self._free() and len(data) <= self._limits.max_bytes:
            self._write_at_once(data)
            return
        self._queue.append(data)
        self._queued(len(data))

    def send_delta(self, frame: Callable[[str], str], text: str) -> None:
        """Queue a text delta whose frame ``frame`` builds (the same function for every delta
        of a stream); joined to the stream's previous delta if that one is not written yet."""
        if self.closed:
            return
        if self._free():
            data = self._utf8(frame(text))
            if len(data) <= self._limits.max_bytes:
                self._write_at_once(data)
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
        if not self._turn_taken and self._writer is None:
            self._take_turn()  # queued while free (over the byte cap): dealt with at turn end
        held = self._queued_bytes + self._in_flight
        if held > self._limits.max_bytes:
            self._close_slow(f"{held} bytes pending, over the cap")
        elif self._pending > self._limits.max_messages and self._over_since is None:
            self._over_since = time.monotonic()
            asyncio.get_running_loop().call_later(
                self._limits.slow_client_seconds, self._check_slow
            )

    async def stop_writer(self) -> None:
        """The connection is over: nothing more is written, a frame still waiting included."""
        self._closing = True
        self._forget_queue()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def flush(self, within: float) -> None:
        """Wait, at most ``within`` seconds, until everything queued so far is written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._queue or self._writer is not None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if self._writer is None:
                await asyncio.sleep(0)  # queued this turn: written when it ends
            else:
                await asyncio.wait({self._writer}, timeout=remaining)

    async def close(self, code: int, reason: str) -> None:
        self._closing = True
        await self.flush(CLOSE_TIMEOUT_SECONDS)
        await self._close_socket(code, reason)

    def _free(self) -> bool:
        """Nothing queued or being written, and no frame written yet this loop turn."""
        return not self._turn_taken and self._writer is None and not self._queue

    def _write_at_once(self, data: bytes) -> None:
        self._take_turn()
        self._write(data)

    def _take_turn(self) -> None:
        self._turn_taken = True
        asyncio.get_running_loop().call_soon(self._turn_over)

    def _turn_over(self) -> None:
        self._turn_taken = False
        while self._queue and self._writer is None:
            self._write(self._next_frame())
        if self._writer is None and self._pending <= self._limits.max_messages:
            self._over_since = None

    def _next_frame(self) -> bytes:
        item = self._queue.popleft()
        if isinstance(item, _Deltas):
            self._queued_bytes -= item.size
            self._pending -= len(item.parts)
            return self._utf8(item.render())
        self._queued_bytes -= len(item)
        self._pending -= 1
        return item

    def _write(self, data: bytes) -> None:
        """Write a frame now; if the transport makes it wait, a writer task finishes it and
        then drains the queue."""
        if self._socket.closed:
            return
        sending = self._socket.send_frame(data, WSMsgType.TEXT)
        try:
            waiting = sending.send(None)
        except StopIteration:
            return
        except ConnectionError:
            self._write_failed()
            return
        self._in_flight = len(data)
        self._writer = asyncio.get_running_loop().create_task(
            self._drain(_Rest(sending, waiting)), name=f"ws-writer-{self.id}"
        )

    async def _drain(self, waiting: _Rest) -> None:
        try:
            await waiting
            while self._queue:
                data = self._next_frame()
                if self._socket.closed:
                    continue
                self._in_flight = len(data)
                await self._socket.send_frame(data, WSMsgType.TEXT)
                if self._pending <= self._limits.max_messages:
                    self._over_since = None
            self._over_since = None
        except ConnectionError:
            self._write_failed()
        finally:
            self._writer = None
            self._in_flight = 0

    def _write_failed(self) -> None:
        # The transport is gone: nothing more will be written, and whoever waits for a
        # flush must not wait on.
        self._closing = True
        self._forget_queue()

    def _forget_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = self._pending = 0

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
        self._forget_queue()
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
