"""One aiohttp ``ClientSession`` for every OpenAI-kind provider, opened on first use and
closed with the app; each request carries its provider's key (``providers.keys``).

No SDK here: the gateway reads the chunk protocol itself (``openai_stream``), which keeps
the relay on the same aiohttp stack as everything else and the ``openai`` package a test
dependency only.
"""

import aiohttp

from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.registry import Provider


class OpenAIClients:
    def __init__(self, keys: ProviderKeys, *, timeout_seconds: float) -> None:
        self.keys = keys
        self._timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No total limit: a long reply streams for minutes. A read that stalls this long
            # is a dead upstream.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=True)
        return self._session

    async def key(self, provider: Provider) -> str | None:
        return await self.keys.key(provider)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
