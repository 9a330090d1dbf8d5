"""Stopping without losing a reply: on SIGTERM, running chat streams end first, then sockets.

aiohttp runs the on_shutdown hooks after it has stopped listening and before it cancels the
handlers still running. That is the moment to end each stream as a stream should end: the
upstream request is closed, the partial reply and its tokens are stored, the client is told
``SERVER_SHUTTING_DOWN``; only then is the socket closed with 1001. Cancelling the handlers
straight away would store the data too, but the client would see a bare close and could not
tell a shutdown from a crash.
"""

import asyncio
import time

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.gateway.connection import ConnectionContext

GOING_AWAY = 1001
# Stopping a stream is closing one HTTP request and one database write: well under a second.
# The rest of the shutdown timeout is left for aiohttp's own wait for handlers.
STREAM_STOP_SECONDS = 5.0
POLL_SECONDS = 0.01


class ShutdownSignal:
    """Set once the gateway begins to stop; running chat streams watch it."""

    def __init__(self) -> None:
        self._begun = asyncio.Event()

    @property
    def begun(self) -> bool:
        return self._begun.is_set()

    def begin(self) -> None:
        self._begun.set()

    async def wait(self) -> None:
        await self._begun.wait()


def setup_shutdown(app: web.Application) -> None:
    app[appkeys.SHUTDOWN] = ShutdownSignal()
    app.on_shutdown.append(close_all)


async def close_all(app: web.Application) -> None:
    """End the running streams, then tell every client we are going away."""
    app[appkeys.SHUTDOWN].begin()
    connections = app[appkeys.CONNECTIONS]
    timeout = app[appkeys.CONFIG].server.shutdown_timeout_seconds
    await _streams_ended(connections, min(STREAM_STOP_SECONDS, timeout / 2))
    await asyncio.gather(
        *(c.close(GOING_AWAY, "server shutting down") for c in list(connections)),
        return_exceptions=True,
    )


async def _streams_ended(connections: set[ConnectionContext], within: float) -> None:
    # chat.send's own flag, not the registered stream: it also covers a chat.send still
    # storing its message, which will see the signal and answer SERVER_SHUTTING_DOWN.
    deadline = time.monotonic() + within
    while any(c.streaming and not c.closed for c in connections):
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(POLL_SECONDS)
