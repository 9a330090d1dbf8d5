"""One ``AsyncAnthropic`` per app, rebuilt when the stored key changes.

The key comes from the vault's ``anthropic`` entry, else ANTHROPIC_API_KEY; the base URL
from config, else ANTHROPIC_BASE_URL, else the SDK's default. The SDK never retries
(``max_retries=0``): it would wait out any retry-after, however long, without a word to the
client. A chat's retries are the gateway's (``llm/retries.py``), bounded and announced; the
HTTP doors and ``context.inspect`` pass a failure on as it came, for their caller to judge.

Keys are changed only by ``agentspace-gateway keys``, in another process (nothing in the
running gateway writes them: the key server only reads), so the vault itself is the only
place a change shows. Reading it is a trip to a thread, which under load cost a chat.send
8-17 ms before its request could go upstream; what was read is kept for
``KEY_FRESH_SECONDS``, so a new or removed key takes effect within about a second.
"""

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping

from anthropic import AsyncAnthropic, DefaultAioHttpClient, OpenTelemetryOptions

from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.config import AnthropicConfig
from agentspace_gateway.first_run import no_key_message
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

log = logging.getLogger(__name__)

PROVIDER = "anthropic"
CHAT_ACTOR = Actor(None, "agentspace-gateway", "chat client")
KEY_FRESH_SECONDS = 1.0


class AnthropicClients:
    def __init__(
        self,
        keys: AuditedKeys | None,
        config: AnthropicConfig,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The vault as the gateway opened it; None when it is unavailable.
        self._keys = keys
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._client: AsyncAnthropic | None = None
        self._key: str | None = None
        # The vault's key as last read, and when that read began (None: never read).
        self._stored_key: str | None = None
        self._stored_key_read_at: float | None = None
        # Replaced clients may still carry a stream; they are closed with the app.
        self._retired: list[AsyncAnthropic] = []
        self._lock = asyncio.Lock()

    @property
    def base_url(self) -> str | None:
        return self._config.base_url or self._environ.get("ANTHROPIC_BASE_URL") or None

    async def current_key(self) -> tuple[str | None, str]:
        """The key to use and where it came from."""
        keys = self._keys
        if keys is not None:
            key = await self._vault_key(keys)
            if key:
                return key, "vault"
        env_key = self._environ.get("ANTHROPIC_API_KEY", "").strip()
        return (env_key or None), "environment"

    async def _vault_key(self, keys: AuditedKeys) -> str | None:
        began = self._clock()
        read_at = self._stored_key_read_at
        if read_at is not None and began - read_at < KEY_FRESH_SECONDS:
            return self._stored_key
        key = await asyncio.to_thread(keys.vault.get_key, PROVIDER)
        self._stored_key, self._stored_key_read_at = key, began
        return key

    async def client(self) -> AsyncAnthropic:
        key, source = await self.current_key()
        if key is None:
            raise GatewayError(
                ErrorCode.NO_API_KEY,
                no_key_message(PROVIDER, vault_available=self._keys is not None),
            )
        if self._client is not None and key == self._key:
            return self._client
        async with self._lock:
            if self._client is None or key != self._key:
                # Building one loads the CA bundle (73-167 ms here): never on the event loop.
                client = await asyncio.to_thread(self._build, key)
                if self._client is not None:
                    self._retired.append(self._client)
                self._client, self._key = client, key
                log.info("Anthropic client ready (key from the %s)", source)
                keys = self._keys
                if keys is not None and source == "vault":
                    await keys.record(AuditEvent.KEY_USE, CHAT_ACTOR, provider=PROVIDER)
            return self._client

    def _build(self, key: str) -> AsyncAnthropic:
        # On the SDK's bundled aiohttp transport rather than httpx's own (h11, httpcore):
        # three quarters of the gateway's CPU went to that stack, and aiohttp halved the CPU
        # per relayed delta (docs/performance.md). Its session opens on first use, on the
        # loop; only the SSL context is made here.
        return AsyncAnthropic(
            api_key=key,
            base_url=self.base_url,
            timeout=self._config.timeout_seconds,
            max_retries=0,
            http_client=DefaultAioHttpClient(),
            open_telemetry=sdk_telemetry(self._environ),
        )

    async def close(self) -> None:
        clients = [*self._retired, *([self._client] if self._client else [])]
        self._client, self._retired = None, []
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def sdk_telemetry(environ: Mapping[str, str]) -> OpenTelemetryOptions | None:
    """The SDK's spans, off unless the process was set up for OpenTelemetry.

    The SDK builds a span for every request even with no exporter to send it to: 1-3% of
    the gateway's CPU per chat. A process started with OpenTelemetry's variables (or the
    SDK's own) gets the SDK's default, which reads them (None)."""
    if any(name.startswith(("OTEL_", "ANTHROPIC_OPEN_TELEMETRY")) for name in environ):
        return None
    return {"traces": {"enabled": False}, "propagation": False}
