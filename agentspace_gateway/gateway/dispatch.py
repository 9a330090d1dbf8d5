"""Decode a frame, hand it to its handler, and turn every failure into the fixed vocabulary."""

import asyncio
import logging
import math
from typing import Any

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.gateway.inbound_limits import InboundLimits
from agentspace_gateway.handler_registry import HandlerRegistry
from agentspace_gateway.protocol.connection_messages import Auth, Authenticated
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.wire import DecodeError, WireCodec
from agentspace_gateway.storage.failures import StorageProblem, storage_problem

log = logging.getLogger(__name__)

# A hint only: how long the requests already running take is not known here.
INFLIGHT_RETRY_SECONDS = 0.1


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
        except Exception as error:
            problem = storage_problem(error)
            if problem is not None:
                self._storage_failed(context, message.type, message.id, problem)
                return
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

    def _storage_failed(
        self, context: ConnectionContext, type_: str, request_id: str, problem: StorageProblem
    ) -> None:
        # The machine's state, not a bug in the handler: one log line, the traceback at DEBUG.
        log.error("%s on connection %s (request %s): %s", type_, context.id, request_id, problem)
        log.debug("the storage failure", exc_info=True)
        context.send_error(
            ErrorCode.STORAGE_UNAVAILABLE,
            f"The {type_} request could not be completed: {problem}",
            request_id=request_id,
            details=problem.details(),
            retryable=True if problem.kind == "locked" else None,
        )

    def refuse_over_rate(
        self, context: ConnectionContext, data: str | bytes, wait: float, limits: InboundLimits
    ) -> None:
        """Answer a frame over the connection's message rate without handling it."""
        self._refuse(
            context,
            data,
            f"This connection sent more than {limits.burst} messages at once or "
            f"{limits.messages_per_second:g} a second; this one was not handled. Send it "
            "again after retryAfterMs, or spread the load over connections.",
            {"messagesPerSecond": limits.messages_per_second, "burst": limits.burst},
            wait,
        )

    def refuse_over_inflight(
        self, context: ConnectionContext, data: str | bytes, limits: InboundLimits
    ) -> None:
        """Answer a frame that arrived while the connection's handlers are all busy."""
        self._refuse(
            context,
            data,
            f"This connection already has {limits.max_inflight} requests being handled; "
            "this one was not handled. Send it again once some are answered.",
            {"inFlight": limits.max_inflight},
            INFLIGHT_RETRY_SECONDS,
        )

    def _refuse(
        self,
        context: ConnectionContext,
        data: str | bytes,
        message: str,
        details: dict[str, Any],
        wait: float,
    ) -> None:
        request_id = self.codec.request_id_of(data) if isinstance(data, str) else None
        context.send_error(
            ErrorCode.RATE_LIMITED,
            message,
            request_id=request_id,
            details={"scope": "connection", **details},
            retryable=True,
            retry_after_ms=max(1, math.ceil(wait * 1000)),
        )
