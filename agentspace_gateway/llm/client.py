"""Anthropic for the app: the key, the chat's HTTP session, and one ``AsyncAnthropic``
(rebuilt when the stored key changes) for what still goes through the SDK.

The chat sends its Messages request itself, on the app's one upstream pool
(``providers.upstream_http``, given to the constructor, closed by its owner) as the
Anthropic API door does (``messages_target``), not through the SDK: building and
sending the request in the SDK (its httpx2 layer over its aiohttp transport) was 17% of
the gateway's Python time a chat (docs/performance.md, "Chat CPU, fifth pass"). The SDK
still serves ``context.inspect``'s token count and the OpenAI door.

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

import aiohttp
from anthropic import AsyncAnthropic, DefaultAioHttpClient, OpenTelemetryOptions
from attrs import frozen

from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.config import AnthropicConfig
from agentspace_gateway.first_run import no_key_message
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.providers.upstream_http import upstream_timeout
from agentspace_gateway.proxy.upstream import DEFAULT_BASE_URL, environment_proxy

log = logging.getLogger(__name__)

PROVIDER = "anthropic"
CHAT_ACTOR = Actor(None, "agentspace-gateway", "chat client")
KEY_FRESH_SECONDS = 1.0
# The API version the chat's requests are written for (the SDK's own default).
ANTHROPIC_VERSION = "2023-06-01"


@frozen
class MessagesTarget:
    """Where a chat's Messages request goes, and with what."""

    session: aiohttp.ClientSession
    url: str
    headers: Mapping[str, str]
    # The HTTP proxy the environment names for the URL, if any (looked up once).
    proxy: str | None
    # The chat's own (a shared pool's default is the doors'): to pass with each request.
    timeout: aiohttp.ClientTimeout


class AnthropicClients:
    def __init__(
        self,
        keys: AuditedKeys | None,
        config: AnthropicConfig,
        environ: Mapping[str, str] | None = None,
        *,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``session``: the app's upstream pool, which its owner closes."""
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
        # The last key a use of was audited (a vault key, on its first use).
        self._audited_key: str | None = None
        self._session = session
        # The chat waits its configured time for a connection too, not the pool's default.
        timeout = config.timeout_seconds
        self._timeout = upstream_timeout(timeout, connect_seconds=timeout)
        self._url = (self.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"
        self._proxy = environment_proxy(self._url)

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

    async def _usable_key(self) -> tuple[str, str]:
        key, source = await self.current_key()
        if key is None:
            raise GatewayError(
                ErrorCode.NO_API_KEY,
                no_key_message(PROVIDER, vault_available=self._keys is not None),
            )
        return key, source

    async def _audit(self, key: str, source: str) -> None:
        """A vault key's use is audited once, when it is first used (and again after another
        key was)."""
        keys = self._keys
        if keys is None or source != "vault" or key == self._audited_key:
            return
        self._audited_key = key
        await keys.record(AuditEvent.KEY_USE, CHAT_ACTOR, provider=PROVIDER)

    async def messages_target(self) -> MessagesTarget:
        """The chat's request target, with the current key; NO_API_KEY when there is none."""
        key, source = await self._usable_key()
        if key != self._key:
            self._key = key
            log.info("Anthropic key in use (from the %s)", source)
        await self._audit(key, source)
        headers = {
            "x-api-key": key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        return MessagesTarget(self._session, self._url, headers, self._proxy, self._timeout)

    async def client(self) -> AsyncAnthropic:
        key, source = await self._usable_key()
        if self._client is not None and key == self._client.api_key:
            return self._client
        async with self._lock:
            if self._client is None or key != self._client.api_key:
                # Building one loads the CA bundle (73-167 ms here): never on the event loop.
                client = await asyncio.to_thread(self._build, key)
                if self._client is not None:
                    self._retired.append(self._client)
                self._client = client
                log.info("Anthropic client ready (key from the %s)", source)
                await self._audit(key, source)
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
