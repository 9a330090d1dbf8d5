"""Stopping without losing a reply: on SIGTERM, running streams end first, then sockets.

aiohttp runs the on_shutdown hooks after it has stopped listening and before it cancels the
handlers still running. That is the moment to end each stream as a stream should end: the
upstream request is closed, the partial reply and its tokens are stored, the client is told
``SERVER_SHUTTING_DOWN``; only then is the socket closed with 1001. Cancelling the handlers
straight away would store the data too, but the client would see a bare close and could not
tell a shutdown from a crash. The gateway knows no room's streams: each room (chat) hands
the signal a hook that ends its own.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Ends a room's streams, within the seconds it is given.
StreamStopper = Callable[[float], Awaitable[None]]


class ShutdownSignal:
    """Set once the gateway begins to stop; what runs long hooks itself in to be ended."""

    def __init__(self) -> None:
        self._begun = False
        self._stoppers: list[StreamStopper] = []

    @property
    def begun(self) -> bool:
        return self._begun

    def begin(self) -> None:
        self._begun = True

    def before_closing(self, stopper: StreamStopper) -> None:
        """Run ``stopper`` at shutdown, before the sockets are closed."""
        self._stoppers.append(stopper)

    async def stop_streams(self, within: float) -> None:
        results = await asyncio.gather(
            *(stopper(within) for stopper in self._stoppers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("ending streams at shutdown failed", exc_info=result)
