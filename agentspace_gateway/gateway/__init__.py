"""The WebSocket gateway at /gateway: access checks, connections, dispatch to handlers."""

import importlib.metadata
from collections.abc import Iterable

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.gateway.dispatch import Dispatcher
from agentspace_gateway.gateway.shutdown import setup_shutdown
from agentspace_gateway.gateway.token_holders import setup_token_holders
from agentspace_gateway.gateway.view import gateway
from agentspace_gateway.handler_registry import load_registry
from agentspace_gateway.protocol.messages import Auth
from agentspace_gateway.protocol.wire import WireCodec


def setup_gateway(
    app: web.Application,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> None:
    """Load the handler plugins once and build the codec over their message classes."""
    registry = load_registry(entry_points)
    codec = WireCodec([*registry.message_classes, Auth])
    app[appkeys.REGISTRY] = registry
    app[appkeys.CODEC] = codec
    app[appkeys.DISPATCHER] = Dispatcher(registry, codec)
    app[appkeys.CONNECTIONS] = set()
    app.router.add_get("/gateway", gateway)
    setup_token_holders(app)
    setup_shutdown(app)
