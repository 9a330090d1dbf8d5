"""The proxied streams in flight, and the one loop that stops those that must end.

A stream ends early when its client key is revoked or expires (the CLI revokes from another
process, so the database is the only place that shows), or when its client has gone: a
served gateway does not cancel a handler whose client left, and a stream waiting on a
stalled upstream writes nothing that would fail. One check per ``interval`` for every open
stream costs one indexed query, not a timer per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from aiohttp import web

from agentspace_gateway.storage.client_keys import ClientKeyRepository

log = logging.getLogger(__name__)

REVOKED = "client_key_revoked"
CLIENT_GONE = "client_gone"
SHUTDOWN = "shutdown"


class OpenStream:
    def __init__(self, client_id: int, request: web.Request) -> None:
        self.client_id = client_id
        self._request = request
        self.stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def stop(self, reason: str) -> None:
        if not self.stopped.done():
            self.stopped.set_result(reason)

    @property
    def client_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()


class OpenStreams:
    def __init__(self, keys: ClientKeyRepository, interval: float) -> None:
        self._keys = keys
        self._interval = interval
        self._streams: set[OpenStream] = set()

    def __len__(self) -> int:
        return len(self._streams)

    @contextlib.contextmanager
    def opened(self, client_id: int, request: web.Request) -> Iterator[OpenStream]:
        stream = OpenStream(client_id, request)
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)

    def stop_all(self, reason: str) -> None:
        for stream in list(self._streams):
            stream.stop(reason)

    async def watch(self) -> None:
        """Run until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                log.exception("checking the open proxy streams failed; trying again")

    async def check(self) -> None:
        streams = list(self._streams)
        for stream in streams:
            if stream.client_gone:
                stream.stop(CLIENT_GONE)
        if not streams:
            return
        revoked = await self._keys.revoked_among({stream.client_id for stream in streams})
        for stream in streams:
            if stream.client_id in revoked:
                stream.stop(REVOKED)
