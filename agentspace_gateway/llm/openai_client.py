"""The HTTP session every OpenAI-kind provider is asked through: the app's one pool
(``providers.upstream_http``) when given, else one of its own, opened on first use and
closed with the app; each request carries its provider's key (``providers.keys``).

No SDK here: the gateway reads the chunk protocol itself (``openai_stream``), which keeps
the relay on the same aiohttp stack as everything else and the ``openai`` package a test
dependency only.
"""

import aiohttp

from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.registry import Provider
from agentspace_gateway.providers.upstream_http import upstream_session, upstream_timeout


class OpenAIClients:
    def __init__(
        self,
        keys: ProviderKeys,
        *,
        timeout_seconds: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """``session``: the app's pool, which its owner closes (its requests' default
        timeout is this one's)."""
        self.keys = keys
        self._timeout = timeout_seconds
        self._shared = session
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._shared is not None:
            return self._shared
        if self._session is None or self._session.closed:
            self._session = upstream_session(upstream_timeout(self._timeout))
        return self._session

    async def key(self, provider: Provider) -> str | None:
        return await self.keys.key(provider)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
