"""What every OpenAI-kind provider is asked with: the app's one HTTP pool
(``providers.upstream_http``, closed by its owner, its requests' default timeout the
gateway's) and each provider's key (``providers.keys``), which each request carries.

No SDK here: the gateway reads the chunk protocol itself (``openai_stream``), which keeps
the relay on the same aiohttp stack as everything else and the ``openai`` package a test
dependency only.
"""

import aiohttp

from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.registry import Provider


class OpenAIClients:
    def __init__(self, keys: ProviderKeys, *, session: aiohttp.ClientSession) -> None:
        """``session``: the app's pool, which its owner closes."""
        self.keys = keys
        self.session = session

    async def key(self, provider: Provider) -> str | None:
        return await self.keys.key(provider)
