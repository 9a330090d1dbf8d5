"""The WebSocket gateway at /gateway: access checks, connections, dispatch to handlers."""

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.console_login import CONSOLE_LOGIN
from agentspace_gateway.gateway.dispatch import Dispatcher
from agentspace_gateway.gateway.keys import (
    CODEC,
    CONNECTIONS,
    DISPATCHER,
    REGISTRY,
    SHUTDOWN,
    TOKEN_HOLDERS,
)
from agentspace_gateway.gateway.shutdown import ShutdownSignal
from agentspace_gateway.gateway.token_holders import TokenHolders
from agentspace_gateway.gateway.view import gateway
from agentspace_gateway.handler_registry import load_registry
from agentspace_gateway.protocol.connection_messages import Auth
from agentspace_gateway.protocol.wire import WireCodec
from agentspace_gateway.storage.client_keys import ClientKeyRepository

GOING_AWAY = 1001
# Stopping a stream is closing one HTTP request and one database write: well under a second.
# The rest of the shutdown timeout is left for aiohttp's own wait for handlers.
STREAM_STOP_SECONDS = 5.0


def setup_gateway(
    app: web.Application,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> None:
    """Load the handlers once and build the codec over their message classes."""
    registry = load_registry(entry_points)
    codec = WireCodec([*registry.message_classes, Auth])
    app[REGISTRY] = registry
    app[CODEC] = codec
    app[DISPATCHER] = Dispatcher(registry, codec)
    app[CONNECTIONS] = set()
    app[SHUTDOWN] = ShutdownSignal()
    app.router.add_get("/gateway", gateway)
    app.cleanup_ctx.append(_token_holders)
    app.on_shutdown.append(close_all)


async def _token_holders(app: web.Application) -> AsyncIterator[None]:
    """Connections that proved the token or a client key, and the console's login codes and
    sessions, watched for the token's rotation and the key's revocation."""
    config = app[appkeys.CONFIG]
    holders = TokenHolders(
        config.gateway.token_check_seconds,
        app[appkeys.VAULT].keys,
        app[appkeys.AUDIT_LOG],
        ClientKeyRepository(app[appkeys.DATABASE]),
        app[CONSOLE_LOGIN],
    )
    app[TOKEN_HOLDERS] = holders
    # Watched always: a client key scopes (and can be revoked on) a connection even where
    # no credential is required. The loop wakes once a second and does nothing when empty.
    async for _ in holders.watch():
        yield


async def close_all(app: web.Application) -> None:
    """End the running streams, then tell every client we are going away."""
    shutdown = app[SHUTDOWN]
    shutdown.begin()
    timeout = app[appkeys.CONFIG].server.shutdown_timeout_seconds
    await shutdown.stop_streams(min(STREAM_STOP_SECONDS, timeout / 2))
    connections = app[CONNECTIONS]
    await asyncio.gather(
        *(c.close(GOING_AWAY, "server shutting down") for c in list(connections)),
        return_exceptions=True,
    )
