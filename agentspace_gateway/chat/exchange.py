"""One chat.send from the stored user message to the stored reply and its cost.

Whatever ends the stream (its end, chat.cancel, the client leaving, an upstream error, the
gateway shutting down), the partial reply is stored, marked incomplete, and every token
Anthropic reported is in the ledger: tokens billed are never dropped.
"""

import asyncio
import json
import logging

from attrs import define

from agentspace_gateway import appkeys
from agentspace_gateway.chat.context_assembly import AssembledContext
from agentspace_gateway.chat.services import ChatServices
from agentspace_gateway.chat.streaming import StreamProgress, consume, delta_frame
from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.pricing import Cost, usd
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.messages import (
    ChatStreamEnd,
    ChatStreamStart,
    TokenUsage,
)
from agentspace_gateway.protocol.messages import (
    Cost as WireCost,
)
from agentspace_gateway.storage import MessageRow, NewMessage, NewUsage, SessionRow

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
# Stored as the usage row's stop reason of a reply cut short by the gateway stopping.
SHUTDOWN = "shutdown"


@define
class ActiveStream:
    """What chat.cancel needs to find and stop the running stream."""

    request_id: str
    stop: asyncio.Event


async def run_exchange(
    context: ConnectionContext,
    services: ChatServices,
    *,
    request_id: str,
    exchange_id: str,
    session: SessionRow,
    model: str,
    user_message: MessageRow,
) -> None:
    """``request_id`` is the client's id for the wire; ``exchange_id`` ties together the
    stored user message, the reply and the usage row."""
    shutdown = context.app[appkeys.SHUTDOWN]
    if shutdown.begun:
        raise shutting_down()
    client = await services.clients.client()
    assembled = await services.assembler.assemble(session.id, model, pending=user_message)
    context.send(ChatStreamStart(request_id=request_id, session_id=session.id, model=model))

    progress = StreamProgress()
    frame = delta_frame(request_id)
    stop = asyncio.Event()
    cut_off = asyncio.Event()

    def relay(text: str) -> None:
        if context.closed:
            # Cut off for not reading (or gone): the handler is cancelled only once the
            # socket has closed, up to a second later. Stop paying for text nobody will read.
            cut_off.set()
        else:
            context.send_text(frame(text))

    context.active_stream = ActiveStream(request_id, stop)
    reading = asyncio.create_task(consume(client, assembled, services.max_tokens, progress, relay))
    stopping = asyncio.create_task(stop.wait())
    shutting = asyncio.create_task(shutdown.wait())
    leaving = asyncio.create_task(cut_off.wait())
    client_gone = False
    try:
        await asyncio.wait(
            {reading, stopping, shutting, leaving}, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        client_gone = True
    finally:
        context.active_stream = None
        for waiter in (stopping, shutting, leaving):
            waiter.cancel()
        cancelled = not reading.done()
        if cancelled:
            # Leaving the SDK's stream context closes the upstream HTTP request.
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
    error = None
    if not cancelled and reading.exception() is not None:
        failure = reading.exception()
        assert failure is not None
        error = upstream_error(failure)
        log.warning("chat %s: upstream failed: %s (%s)", request_id, error.code, error.message)
    stop_reason = CANCELLED if cancelled else (progress.stop_reason or "error")
    shut_down = shutting.done() and not shutting.cancelled()
    if cancelled and shut_down and not (client_gone or stop.is_set() or cut_off.is_set()):
        # The client is still here and did not cancel: tell it why its reply stopped.
        error, stop_reason = shutting_down(), SHUTDOWN

    # Stored even when this task is being cancelled (the client left): shield the write.
    keeping = asyncio.ensure_future(
        _keep(services, session, model, exchange_id, assembled, progress, stop_reason, error)
    )
    try:
        cost = await asyncio.shield(keeping)
    except asyncio.CancelledError:
        client_gone = True
        cost = await keeping
    if client_gone:
        raise asyncio.CancelledError
    if error is not None:
        raise error
    counts = progress.counts
    context.send(
        ChatStreamEnd(
            request_id=request_id,
            session_id=session.id,
            usage=TokenUsage(
                input_tokens=counts.input_tokens,
                output_tokens=counts.output_tokens,
                cache_creation_input_tokens=counts.cache_creation_input_tokens,
                cache_read_input_tokens=counts.cache_read_input_tokens,
                total_tokens=counts.total,
            ),
            cost=WireCost(
                input_cost=usd(cost.input_side_nanousd),
                output_cost=usd(cost.output_nanousd),
                total_cost=usd(cost.total_nanousd),
                priced=cost.priced,
            ),
            stop_reason=stop_reason,
        )
    )


async def _keep(
    services: ChatServices,
    session: SessionRow,
    model: str,
    exchange_id: str,
    assembled: AssembledContext,
    progress: StreamProgress,
    stop_reason: str,
    error: GatewayError | None,
) -> Cost:
    counts = progress.counts
    cost = services.price_book.cost(model, counts)
    text = progress.text
    complete = error is None and stop_reason != CANCELLED
    reply = None
    if text:
        reply = NewMessage(
            session.id,
            "assistant",
            text,
            token_count=counts.output_tokens or None,
            token_estimate=await services.estimator.count_async(text),
            complete=complete,
            request_id=exchange_id,
        )
    usage = None
    if progress.started or counts.total > 0:
        usage = NewUsage(
            session_id=session.id,
            model=model,
            input_tokens=counts.input_tokens,
            output_tokens=counts.output_tokens,
            cache_creation_input_tokens=counts.cache_creation_input_tokens,
            cache_read_input_tokens=counts.cache_read_input_tokens,
            cost_nanousd=cost.total_nanousd,
            input_cost_nanousd=cost.input_nanousd,
            output_cost_nanousd=cost.output_nanousd,
            cache_write_cost_nanousd=cost.cache_write_nanousd,
            cache_read_cost_nanousd=cost.cache_read_nanousd,
            priced=cost.priced,
            prices=_prices_json(cost),
            estimated_input_tokens=assembled.estimated_input_tokens,
            stop_reason=stop_reason,
            request_id=exchange_id,
        )
    await services.recorder.record(reply, usage)
    return cost


def shutting_down() -> GatewayError:
    return GatewayError(
        ErrorCode.SERVER_SHUTTING_DOWN,
        "The gateway is shutting down. The reply so far is kept in the session; send the "
        "message again once the gateway is back.",
        retryable=True,
    )


def _prices_json(cost: Cost) -> str | None:
    prices = cost.prices
    if prices is None:
        return None
    return json.dumps(
        {
            "inputPerMTok": _text(prices.input_mtok),
            "outputPerMTok": _text(prices.output_mtok),
            "cacheReadPerMTok": _text(prices.cache_read_mtok),
            "cacheWritePerMTok": _text(prices.cache_write_mtok),
            "source": prices.source,
        }
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
