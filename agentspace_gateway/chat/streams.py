"""The chat streams running, one per connection at most: what chat.cancel and the shutdown
find. Chat's own state, kept out of the generic connection."""

import asyncio
import enum
import time
from typing import Protocol

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

POLL_SECONDS = 0.01


class StopReason(enum.Enum):
    """Why a stream was cut short: each is a reason to stop, not a path of its own."""

    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"
    # Left, or cut off for not reading.
    CLIENT_GONE = "client_gone"
    MESSAGE_NOT_STORED = "message_not_stored"


class Stoppable(Protocol):
    @property
    def context(self) -> ConnectionContext: ...

    @property
    def request_id(self) -> str: ...

    @property
    def relaying(self) -> bool:
        """Gone upstream and not ended: a chat.cancel applies."""
        ...

    def stop(self, reason: StopReason) -> None: ...


class ChatStreams:
    def __init__(self) -> None:
        self._running: dict[ConnectionContext, Stoppable] = {}

    def claim(self, stream: Stoppable) -> None:
        """Register ``stream`` as its connection's; STREAM_IN_PROGRESS if one runs there.

        Called before the handler's first await, so a second chat.send right behind the
        first sees it."""
        if stream.context in self._running:
            raise GatewayError(
                ErrorCode.STREAM_IN_PROGRESS,
                "A reply is already streaming on this connection; wait for chat.stream.end, "
                "send chat.cancel, or open another connection.",
            )
        self._running[stream.context] = stream

    def release(self, stream: Stoppable) -> None:
        if self._running.get(stream.context) is stream:
            del self._running[stream.context]

    def on(self, context: ConnectionContext) -> Stoppable | None:
        return self._running.get(context)

    async def stop_all(self, reason: StopReason, within: float) -> None:
        """Stop every stream, and wait (at most ``within`` seconds) for their ends: each
        closes its upstream request and stores its reply and usage."""
        for stream in list(self._running.values()):
            stream.stop(reason)
        deadline = time.monotonic() + within
        # Streams still storing their message see the stop once they go upstream.
        while any(not stream.context.closed for stream in self._running.values()):
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_SECONDS)
