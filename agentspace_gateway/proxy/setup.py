"""Wires the proxy into the app: its routes now, its resources in ``cleanup_ctx``.

Every proxied request goes on the app's one upstream pool (``providers.upstream_http``,
shared with the chat and the OpenAI-kind providers; the SDK is not on this path), and one
loop watches the open streams, which are stopped and billed when the app closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.client_auth import CLIENT_AUTH
from agentspace_gateway.client_auth.attribution import SessionCache
from agentspace_gateway.client_auth.deferred import HeldWork
from agentspace_gateway.client_auth.keys import ClientAuth, PassthroughClient
from agentspace_gateway.providers.upstream_http import UPSTREAM_HTTP, upstream_timeout
from agentspace_gateway.proxied_inspection import PROXIED_INSPECTOR
from agentspace_gateway.proxy.inspection import ProxiedInspector
from agentspace_gateway.proxy.kept_requests import KeptRequests
from agentspace_gateway.proxy.models import priced_models
from agentspace_gateway.proxy.open_streams import SHUTDOWN, OpenStreams
from agentspace_gateway.proxy.routes import PROXY, ProxyDoor, add_routes
from agentspace_gateway.proxy.upstream import DEFAULT_BASE_URL, Upstream
from agentspace_gateway.storage.client_keys import ClientKeyReader, ClientKeyRepository


async def proxy_context(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    database = app[appkeys.DATABASE]
    price_book = app[CHAT].price_book
    # The chat's Anthropic clients: one key look-up (vault, else ANTHROPIC_API_KEY, cached
    # for a second) for the chat and this door, not one each.
    keys = app[CHAT].clients
    base_url = keys.base_url or DEFAULT_BASE_URL
    # Anthropic's own SDK reads ANTHROPIC_BASE_URL the same way; chat and proxy agree.
    client_keys = ClientKeyRepository(database)
    streams = OpenStreams(client_keys, config.proxy.key_check_seconds)
    origins = app[appkeys.SESSION_ORIGINS]
    kept = KeptRequests(app[appkeys.HOME].root / "proxy-requests", config.proxy.kept_requests)
    reader = await ClientKeyReader.open(database.path)
    door = ProxyDoor(
        auth=ClientAuth(
            reader,
            app[appkeys.AUDIT_LOG],
            app[appkeys.FAILED_AUTH],
            PassthroughClient(client_keys) if config.proxy.passthrough_credentials else None,
        ),
        upstream=Upstream(
            app[UPSTREAM_HTTP], base_url, keys.current_key, config.proxy.forward_headers
        ),
        # The app's one metering pipeline: chat, this door and every other bill through it.
        metering=app[CHAT].metering,
        origins=origins,
        sessions=SessionCache(origins),
        streams=streams,
        models=await asyncio.to_thread(priced_models, price_book, config.pricing),
        max_body_bytes=config.proxy.max_body_bytes,
        kept=kept,
        inspector=ProxiedInspector(kept, origins, app[CHAT].estimator, price_book),
        timeout=upstream_timeout(config.anthropic.timeout_seconds),
        held=HeldWork(),
    )
    app[PROXY] = door
    # The WebSocket checks client keys with the same instance: one limiter, one audit trail.
    app[CLIENT_AUTH] = door.auth
    app[PROXIED_INSPECTOR] = door.inspector
    watching = asyncio.create_task(streams.watch())
    try:
        yield
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        streams.stop_all(SHUTDOWN)
        door.held.run()  # the audit rows and kept bodies still held, before they are flushed
        await door.auth.flush()
        await kept.flush()
        await door.sessions.flush()
        await reader.close()


async def stop_streams(app: web.Application) -> None:
    """At shutdown, before handlers are waited for: open streams end now, billed."""
    door = app.get(PROXY)
    if door is not None:
        door.streams.stop_all(SHUTDOWN)


def setup_proxy(app: web.Application) -> None:
    add_routes(app)
    app.cleanup_ctx.append(proxy_context)
    app.on_shutdown.append(stop_streams)
