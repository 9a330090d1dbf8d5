"""The gateway room's typed app keys, set by ``setup_gateway``."""

from aiohttp import web

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.gateway.dispatch import Dispatcher
from agentspace_gateway.gateway.shutdown import ShutdownSignal
from agentspace_gateway.gateway.token_holders import TokenHolders
from agentspace_gateway.handler_registry import HandlerRegistry
from agentspace_gateway.protocol.wire import WireCodec

REGISTRY = web.AppKey("registry", HandlerRegistry)
CODEC = web.AppKey("codec", WireCodec)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
CONNECTIONS: web.AppKey[set[ConnectionContext]] = web.AppKey("connections")
TOKEN_HOLDERS = web.AppKey("token_holders", TokenHolders)
SHUTDOWN = web.AppKey("shutdown", ShutdownSignal)
