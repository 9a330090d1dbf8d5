"""Decode a frame, hand it to its handler, and turn every failure into the fixed vocabulary."""

import asyncio
import logging

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.handler_registry import HandlerRegistry
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.messages import Auth, Authenticated
from agentspace_gateway.protocol.wire import DecodeError, WireCodec

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, registry: HandlerRegistry, codec: WireCodec) -> None:
        self.registry = registry
        self.codec = codec

    async def dispatch(self, context: ConnectionContext, text: str) -> None:
        try:
            message = self.codec.decode(text)
        except DecodeError as error:
            context.send_error(
                error.code, error.message, request_id=error.request_id, details=error.details
            )
            return
        if isinstance(message, Auth):
            # Already past the access checks; a repeated auth frame is harmless.
            context.send(Authenticated())
            return
        handler = self.registry.handler_for(message.type)
        if handler is None:  # the codec only knows registered types, so this is a bug
            context.send_error(ErrorCode.INTERNAL_ERROR, "No handler.", request_id=message.id)
            return
        try:
            await handler(context, message)
        except GatewayError as error:
            context.send_gateway_error(error, message.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "handler for %s failed on connection %s (request %s)",
                message.type,
                context.id,
                message.id,
            )
            context.send_error(
                ErrorCode.INTERNAL_ERROR,
                f"The {message.type} handler failed; the error is in the gateway's log. "
                "The connection stays open.",
                request_id=message.id,
            )
