"""What every scenario is given: the running processes, an HTTP client, the seeded data."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import attrs
from aiohttp import ClientWebSocketResponse

from benchmarks.processes import FakeUpstream, Gateway
from benchmarks.seed import Seeded


@attrs.define
class Stage:
    workdir: Path
    fake: FakeUpstream
    gateway: Gateway
    http: aiohttp.ClientSession
    seeded: Seeded
    # For the proxy scenario (None when it is not run): a client key and the fake OpenAI.
    client_key: str | None = None
    openai_url: str | None = None

    @contextlib.asynccontextmanager
    async def sockets(
        self, count: int, *, gateway: Gateway | None = None, batch: int = 100
    ) -> AsyncIterator[list[ClientWebSocketResponse]]:
        """``count`` WebSocket connections to the gateway, each its own TCP connection,
        opened ``batch`` at a time; any that fails to open fails the scenario."""
        target = gateway or self.gateway
        url, headers = target.ws_url, target.ws_headers
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            opened: list[ClientWebSocketResponse] = []
            try:
                while len(opened) < count:
                    size = min(batch, count - len(opened))
                    attempts = await asyncio.gather(
                        *(
                            session.ws_connect(url, max_msg_size=0, headers=headers)
                            for _ in range(size)
                        ),
                        return_exceptions=True,
                    )
                    opened += [ws for ws in attempts if isinstance(ws, ClientWebSocketResponse)]
                    failures = [error for error in attempts if isinstance(error, BaseException)]
                    if failures:
                        raise failures[0]
                yield opened
            finally:
                await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
