"""One chat.send from the user's message to the stored reply and its cost.

The user's message is stored while the request goes upstream, not before it: a write (an
fsync) before the request cost 20-29 ms of the time to the first delta with 50 streams in
flight. What must come first still does: the message is stored before ``chat.stream.start``
is sent (text that arrives sooner waits for it), before the reply and before the usage row;
if it cannot be stored the upstream request is closed, nothing of the reply is kept, and the
client is told to send it again.

Whatever else ends the stream (its end, chat.cancel, the client leaving, an upstream error,
the gateway shutting down), the partial reply is stored, marked incomplete, and every token
Anthropic reported is in the ledger: tokens billed are never dropped.
"""

import asyncio
import logging
from typing import Any

from attrs import define

from agentspace_gateway import appkeys
from agentspace_gateway.chat.context_assembly import AssembledContext
from agentspace_gateway.chat.services import ChatServices
from agentspace_gateway.chat.streaming import StreamProgress, consume, delta_frame
from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.pricing import Cost
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.messages import ChatStreamEnd, ChatStreamStart
from agentspace_gateway.storage import (
    MessageRepository,
    MessageRow,
    NewMessage,
    NewUsage,
    SessionRow,
    UsageLedger,
    UsageRecord,
)
from agentspace_gateway.wire_costs import wire_cost, wire_usage

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
    session: SessionRow,
    model: str,
    user_message: NewMessage,
) -> None:
    """``request_id`` is the client's id for the wire; ``user_message.request_id`` (the
    exchange id) ties together the stored user message, the reply and the usage row."""
    exchange_id = user_message.request_id
    if exchange_id is None:
        raise ValueError("The user message needs its exchange id (request_id).")
    shutdown = context.app[appkeys.SHUTDOWN]
    storing = asyncio.ensure_future(_store(context.app[appkeys.MESSAGES], user_message))
    try:
        if shutdown.begun:
            raise shutting_down()
        client = await services.clients.client()
        # Whether or not the read sees the message yet, it is sent once, last.
        assembled = await services.assembler.assemble(session.id, model, pending=user_message)
    except asyncio.CancelledError:
        await _settled(storing)
        raise
    except Exception:
        # Nothing went upstream. The message stays stored (NO_API_KEY and
        # SERVER_SHUTTING_DOWN say so) unless it could not be, which is what the client
        # then needs to know.
        if await _settled(storing) is None:
            raise message_not_stored() from None
        raise
    if _failed(storing):
        raise message_not_stored()

    progress = StreamProgress()
    frame = delta_frame(request_id)
    stop = asyncio.Event()
    cut_off = asyncio.Event()
    # chat.stream.start goes out once the message is stored, so a client that saw it can
    # count on the message being kept, crash or not; text that comes sooner waits for it.
    early: list[str] | None = []  # None once announced

    def announce() -> None:
        nonlocal early
        if early is None:
            return
        waiting_text, early = early, None
        context.send(ChatStreamStart(request_id=request_id, session_id=session.id, model=model))
        for text in waiting_text:
            context.send_delta(frame, text)

    def relay(text: str) -> None:
        if context.closed:
            # Cut off for not reading (or gone): the handler is cancelled only once the
            # socket has closed, up to a second later. Stop paying for text nobody will read.
            cut_off.set()
        elif early is not None:
            early.append(text)
        else:
            context.send_delta(frame, text)

    if storing.done():
        announce()  # stored already (it did not fail: checked above)
    # The usage row is opened as soon as the input side is reported, so that a crash
    # mid-stream still leaves those tokens in the ledger; the end brings it up to date.
    opening: asyncio.Future[UsageRecord | None] | None = None

    def started() -> None:
        nonlocal opening
        if opening is None:
            usage, _ = _usage(services, session, model, exchange_id, assembled, progress)
            opening = asyncio.ensure_future(_open(context.app[appkeys.USAGE_LEDGER], usage))

    context.active_stream = ActiveStream(request_id, stop)
    reading = asyncio.create_task(
        consume(client, assembled, services.max_tokens, progress, relay, started)
    )
    stopping = asyncio.create_task(stop.wait())
    shutting = asyncio.create_task(shutdown.wait())
    leaving = asyncio.create_task(cut_off.wait())
    waiting = {reading, stopping, shutting, leaving, storing}
    client_gone = False
    try:
        while True:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if storing in done:
                if _failed(storing):
                    # No reply can be kept without its message: the request is closed below.
                    break
                waiting.discard(storing)
                announce()
                if done == {storing}:
                    continue  # only the stream's own ends are left to wait for
            # The stream ended, or was stopped.
            break
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
            client_gone = await _outlast(reading) or client_gone
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
        _keep(
            services,
            session,
            model,
            exchange_id,
            storing,
            opening,
            assembled,
            progress,
            stop_reason,
            error,
        )
    )
    client_gone = await _outlast(keeping) or client_gone
    cost = keeping.result()
    if client_gone:
        raise asyncio.CancelledError
    if cost is None:
        raise message_not_stored()
    # The stream may have ended before its message was stored: the client still gets it all.
    announce()
    if error is not None:
        raise error
    context.send(
        ChatStreamEnd(
            request_id=request_id,
            session_id=session.id,
            usage=wire_usage(progress.counts),
            cost=wire_cost(cost),
            stop_reason=stop_reason,
        )
    )


async def _store(messages: MessageRepository, message: NewMessage) -> MessageRow | None:
    """Store the user's message; None when that failed (logged here, with its cause)."""
    try:
        return await messages.add(
            message.session_id,
            message.role,
            message.content,
            token_estimate=message.token_estimate,
            request_id=message.request_id,
        )
    except Exception:
        log.exception("chat %s: the user message could not be stored", message.request_id)
        return None


def _failed(storing: "asyncio.Future[MessageRow | None]") -> bool:
    return storing.done() and (storing.cancelled() or storing.result() is None)


async def _settled(storing: "asyncio.Future[MessageRow | None]") -> MessageRow | None:
    """The stored message once its write has ended, even if this task is cancelled meanwhile
    (a write asked for lands whole); None if it failed."""
    try:
        return await asyncio.shield(storing)
    except asyncio.CancelledError:
        if not storing.done():
            await asyncio.wait({storing})
        raise


async def _outlast(task: "asyncio.Future[Any]") -> bool:
    """Wait for ``task`` to end however often this task is cancelled meanwhile (the reply
    and its usage are written whole even when aiohttp cancels a handler twice at shutdown);
    True if it was cancelled."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


async def _open(ledger: UsageLedger, usage: NewUsage) -> UsageRecord | None:
    """Open the request's usage row; None if that failed (logged: the end inserts it then)."""
    try:
        return await ledger.open(usage)
    except Exception:
        log.exception("chat %s: the usage row could not be opened", usage.request_id)
        return None


def _usage(
    services: ChatServices,
    session: SessionRow,
    model: str,
    exchange_id: str,
    assembled: AssembledContext,
    progress: StreamProgress,
    stop_reason: str | None = None,
) -> tuple[NewUsage, Cost]:
    """The request's usage as reported so far, priced."""
    counts = progress.counts
    cost = services.price_book.cost(model, counts)
    usage = NewUsage.of(
        counts,
        cost,
        session_id=session.id,
        model=model,
        request_id=exchange_id,
        estimated_input_tokens=assembled.estimated_input_tokens,
        stop_reason=stop_reason,
    )
    return usage, cost


async def _keep(
    services: ChatServices,
    session: SessionRow,
    model: str,
    exchange_id: str,
    storing: "asyncio.Future[MessageRow | None]",
    opening: "asyncio.Future[UsageRecord | None] | None",
    assembled: AssembledContext,
    progress: StreamProgress,
    stop_reason: str,
    error: GatewayError | None,
) -> Cost | None:
    """Store the reply and its usage after the user's message; None if that message failed.

    Without its message no reply is kept (it would answer nothing in the history), but the
    tokens Anthropic reported are still recorded: tokens billed are never dropped.
    """
    message_stored = not storing.cancelled() and await asyncio.shield(storing) is not None
    opened = None if opening is None else await asyncio.shield(opening)
    usage, cost = _usage(
        services,
        session,
        model,
        exchange_id,
        assembled,
        progress,
        stop_reason if message_stored else "message_not_stored",
    )
    text = progress.text
    complete = error is None and stop_reason != CANCELLED
    reply = None
    if text and message_stored:
        reply = NewMessage(
            session.id,
            "assistant",
            text,
            token_count=progress.counts.output_tokens or None,
            token_estimate=await services.estimator.count_async(text),
            complete=complete,
            request_id=exchange_id,
        )
    recorded_usage = usage if progress.started or progress.counts.total > 0 else None
    if reply is not None or recorded_usage is not None:
        await services.recorder.record(
            reply, recorded_usage, open_usage_id=None if opened is None else opened.id
        )
    return cost if message_stored else None


def message_not_stored() -> GatewayError:
    return GatewayError(
        ErrorCode.INTERNAL_ERROR,
        "Your message could not be stored, so its request to Anthropic was stopped and "
        "nothing of the reply was kept (any tokens already billed are in the usage ledger); "
        "the cause is in the gateway's log. Send it again.",
    )


def shutting_down() -> GatewayError:
    return GatewayError(
        ErrorCode.SERVER_SHUTTING_DOWN,
        "The gateway is shutting down. The reply so far is kept in the session; send the "
        "message again once the gateway is back.",
        retryable=True,
    )
