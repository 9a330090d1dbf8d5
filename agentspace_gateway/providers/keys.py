"""A provider's API key, from its key sources in order: the vault's entry, then the
environment; none at all for a keyless (local) server.

What the vault said is kept for a second (as ``llm/client.py`` does for Anthropic): reading
it is a trip to a thread, and keys change only through ``agentspace-gateway keys`` in
another process.
"""

import asyncio
import os
import time
from collections.abc import Callable, Mapping

from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.first_run import no_key_message
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.providers.registry import Provider

KEY_FRESH_SECONDS = 1.0
_ACTOR = Actor(None, "agentspace-gateway", "provider client")


class ProviderKeys:
    def __init__(
        self,
        keys: AuditedKeys | None,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        # vault entry -> (key, when read)
        self._read: dict[str, tuple[str | None, float]] = {}
        self._used: set[str] = set()

    async def key(self, provider: Provider) -> str | None:
        """The key to send, None for a keyless provider; NO_API_KEY when none is set."""
        if provider.keyless:
            return None
        for source in provider.key_sources:
            kind, _, name = source.partition(":")
            if kind == "vault":
                key = await self._vault_key(name)
            else:
                key = self._environ.get(name, "").strip() or None
            if key:
                return key
        vault = next((s for s in provider.key_sources if s.startswith("vault:")), None)
        if vault is None:
            variables = " or ".join(s.partition(":")[2] for s in provider.key_sources)
            raise GatewayError(
                ErrorCode.NO_API_KEY,
                f"The {provider.name} provider's API key is not set: set {variables} in the "
                "gateway's environment and restart it.",
            )
        raise GatewayError(
            ErrorCode.NO_API_KEY,
            no_key_message(vault.partition(":")[2], vault_available=self._keys is not None),
        )

    async def _vault_key(self, name: str) -> str | None:
        keys = self._keys
        if keys is None:
            return None
        began = self._clock()
        cached = self._read.get(name)
        if cached is not None and began - cached[1] < KEY_FRESH_SECONDS:
            return cached[0]
        key = await asyncio.to_thread(keys.vault.get_key, name)
        self._read[name] = (key, began)
        if key and name not in self._used:
            # The first use is audited, as the Anthropic client's is.
            self._used.add(name)
            await keys.record(AuditEvent.KEY_USE, _ACTOR, provider=name)
        return key
