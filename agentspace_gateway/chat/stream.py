"""One chat.send, from the user's message to the stored reply and its cost.

The user's message is stored while the request goes upstream, not before it: a write (an
fsync) before the request cost 20-29 ms of the time to the first delta with 50 streams in
flight. What must come first still does: the message is stored before ``chat.stream.start``
is sent (text that arrives sooner waits for it), before the reply and before the usage row;
if it cannot be stored the upstream request is closed, nothing of the reply is kept, and the
client is told to send it again.

A stream has one way to stop: ``stop(reason)``. A cancel, the gateway shutting down, a
client that left or stopped reading, and a message that could not be stored are reasons;
each closes the upstream request, and the billed request (``metering``) keeps the partial
reply, marked incomplete, and every token Anthropic reported.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable

from agentspace_gateway.chat.frames import delta_frame
from agentspace_gateway.chat.services import ChatServices
from agentspace_gateway.chat.streams import StopReason
from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.metering import BilledRequest, Failed, Settlement, TextStreamed
from agentspace_gateway.metering.budget_refusals import budget_exceeded
from agentspace_gateway.metering.events import StreamEvent, Waiting
from agentspace_gateway.metering.outlast import outlast
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.messages import (
    ChatStreamEnd,
    ChatStreamStart,
    ChatStreamStatus,
    ErrorMessage,
)
from agentspace_gateway.storage import MessageRow, NewMessage, SessionRow
from agentspace_gateway.storage.budgets import Scope
from agentspace_gateway.storage.failures import StorageProblem, storage_problem
from agentspace_gateway.storage.usage import Attribution
from agentspace_gateway.wire_costs import wire_cost, wire_usage

log = logging.getLogger(__name__)


CANCELLED = "cancelled"
# Stored as the usage row's stop reason of a reply cut short by the gateway stopping.
SHUTDOWN = "shutdown"


class ChatStream:
    """Registered (``ChatStreams``) from the first moment of its chat.send to its end."""

    def __init__(self, context: ConnectionContext, services: ChatServices, request_id: str):
        self.context = context
        self.request_id = request_id
        self._services = services
        # Why the stream was cut short, if it was (the reasons that came while it ran).
        self._reasons: set[StopReason] = set()
        # The handler itself was cancelled: the socket has closed.
        self._handler_cancelled = False
        self._reading: asyncio.Task[None] | None = None
        # chat.stream.start goes out once the message is stored, so a client that saw it
        # can count on the message being kept, crash or not; text (and a status) that
        # comes sooner waits.
        self._early: list[str | ChatStreamStatus] | None = []  # None once announced
        self._start: ChatStreamStart | None = None
        self._frame = delta_frame(request_id)
        # Why the user's message could not be stored, when the storage itself was why.
        self._store_problem: StorageProblem | None = None
        # The user's message's write, once begun (``store_early``, else ``run``).
        self._storing: asyncio.Future[MessageRow | None] | None = None

    @property
    def relaying(self) -> bool:
        """The request has gone upstream and has not ended: a chat.cancel applies to it."""
        return self._reading is not None and not self._reading.done()

    def store_early(self, message: NewMessage, *, client_name: str | None) -> None:
        """Begin the user's message's write before its session has been read: queued right
        behind that read, the write (and its fsync) is done while the request is prepared
        rather than after. It lands only in a session the reader may use (``client_name``:
        the connection's client, None for the owner), or not at all. ``run`` with the same
        message takes it over."""
        writing = self._services.messages.append_if_visible(message, client_name=client_name)
        self._storing = asyncio.ensure_future(self._store(writing, message))

    async def _store(
        self, writing: Awaitable[MessageRow | None], message: NewMessage
    ) -> MessageRow | None:
        """The user's message, once ``writing`` has stored it; None when that failed (logged
        here, with its cause)."""
        try:
            return await writing
        except Exception as error:
            self._store_problem = storage_problem(error)
            if self._store_problem is None:
                log.exception("chat %s: the user message could not be stored", message.request_id)
            else:  # the machine's state, not a bug: one line, the traceback only at DEBUG
                log.error(
                    "chat %s: message not stored: %s", message.request_id, self._store_problem
                )
                log.debug("the storage failure", exc_info=True)
            return None

    def stop(self, reason: StopReason) -> None:
        """End the stream for ``reason``. One that has already ended is not changed."""
        reading = self._reading
        if reading is None or not reading.done():
            self._reasons.add(reason)
        if reading is not None:
            reading.cancel()

    async def run(
        self,
        *,
        session: SessionRow,
        model: str,
        user_message: NewMessage,
        agent_id: str | None = None,
        recent: tuple[MessageRow, ...] | None = None,
    ) -> None:
        """``user_message.request_id`` (the exchange id) ties together the stored message,
        the reply and the usage row; ``self.request_id`` is the client's, for the wire.
        ``agent_id``: the caller's agent (chat.send's agentId), billed and budgeted.
        ``recent``: the session's messages as already read (``ContextAssembler.open_session``),
        else they are read here."""
        if user_message.request_id is None:
            raise ValueError("The user message needs its exchange id (request_id).")
        services = self._services
        begun = self._storing is not None
        if self._storing is None:
            writing = services.messages.append(user_message)
            self._storing = asyncio.ensure_future(self._store(writing, user_message))
        storing = self._storing
        try:
            if not begun:
                # One turn, so the write is on its way to the database thread while the
                # request is prepared (its fsync is the slowest step before the first delta
                # can go out), and so a store that fails at once (the database closed, say)
                # stops the request before it goes upstream.
                await asyncio.sleep(0)
            if services.shutdown.begun:
                raise shutting_down()
            upstream = await services.upstreams.open(model)
            # Whether or not the read sees the message yet, it is sent once, last.
            assembled = await services.assembler.assemble(
                session.id, upstream.route.model, pending=user_message, recent=recent
            )
        except asyncio.CancelledError:
            await _settled(storing)
            raise
        except Exception:
            # Nothing went upstream. The message stays stored (NO_API_KEY and
            # SERVER_SHUTTING_DOWN say so) unless it could not be, which the client then
            # needs to know.
            if await _settled(storing) is None:
                raise message_not_stored(self._store_problem) from None
            raise
        if _failed(storing):
            raise message_not_stored(self._store_problem)
        if StopReason.SHUTDOWN in self._reasons:
            await _settled(storing)
            raise shutting_down()

        try:
            client = self.context.client
            client_key_id = None if client is None else client.id
            admitted = await services.metering.admit(
                Scope(session_id=session.id, client_key_id=client_key_id, agent_id=agent_id),
                session_id=session.id,
                model=upstream.route.ledger_model,
                request_id=user_message.request_id,
                max_tokens=services.max_tokens,
                estimated_input_tokens=assembled.estimated_input_tokens,
                # A client key's connection bills to that client, as its HTTP requests do.
                attribution=None
                if client is None and agent_id is None
                else Attribution(client_key_id, agent_id, None),
            )
        except BaseException:
            await _settled(storing)
            raise
        if not isinstance(admitted, BilledRequest):
            # Nothing went upstream; the message stays stored, as for NO_API_KEY.
            if await _settled(storing) is None:
                raise message_not_stored()
            raise budget_exceeded(admitted)
        billed = admitted
        self._start = ChatStreamStart(
            request_id=self.request_id,
            session_id=session.id,
            model=model,
            max_tokens_clipped=billed.max_tokens_clipped,
        )
        if storing.done():
            self._stored(storing)  # stored already (it did not fail: checked above)
        else:
            storing.add_done_callback(self._stored)
        max_tokens = billed.max_tokens or services.max_tokens
        self._reading = asyncio.create_task(
            self._read(upstream.events(assembled, max_tokens), billed)
        )
        try:
            await asyncio.wait([self._reading])
        except asyncio.CancelledError:
            # aiohttp cancels the handler once the socket has closed.
            self._handler_cancelled = True
            self.stop(StopReason.CLIENT_GONE)
        if await outlast(self._reading):  # closing the upstream request takes a moment
            self._handler_cancelled = True
        if not self._reading.cancelled() and (failure := self._reading.exception()) is not None:
            # Not the upstream's (that comes as a Failed event): the relay itself broke.
            log.error("chat %s: relaying the reply failed", self.request_id, exc_info=failure)
            billed.feed(Failed(upstream_error(failure)))

        finishing = asyncio.ensure_future(self._finish(billed, storing, user_message))
        if await outlast(finishing):
            self._handler_cancelled = True
        settlement, error = finishing.result()
        if self._handler_cancelled:
            raise asyncio.CancelledError
        if settlement is None:
            raise message_not_stored(self._store_problem)
        # The stream may have ended before its message was stored: the client still gets it.
        self._announce()
        usage = wire_usage(settlement.counts, estimated=settlement.output_estimated)
        if error is not None:
            if settlement.usage is None:
                raise error
            # The tokens billed for the failed request go with its error.
            self.context.send(_error_frame(error, self.request_id, settlement))
            return
        self.context.send(
            ChatStreamEnd(
                request_id=self.request_id,
                session_id=session.id,
                usage=usage,
                cost=wire_cost(settlement.cost),
                stop_reason=self._stop_reason(billed),
            )
        )

    async def _read(
        self, upstream: AsyncGenerator[StreamEvent, None], billed: BilledRequest
    ) -> None:
        feed = billed.feed
        # Closed on any way out, so the upstream request never outlives the stream.
        async with contextlib.aclosing(upstream) as events:
            async for event in events:
                feed(event)
                if type(event) is TextStreamed:
                    self._relay(event.text)
                elif type(event) is Failed:
                    error = event.error
                    log.warning(
                        "chat %s: upstream failed: %s (%s)",
                        self.request_id,
                        error.code,
                        error.message,
                    )
                elif type(event) is Waiting:
                    self._waiting(event)

    def _waiting(self, event: Waiting) -> None:
        """Every wait the gateway makes is told to the client before it begins."""
        error = event.error
        log.info(
            "chat %s: upstream failed (%s), retry %d in %.1f s",
            self.request_id,
            error.code,
            event.retry,
            event.seconds,
        )
        status = ChatStreamStatus(
            request_id=self.request_id,
            waiting_ms=round(event.seconds * 1000),
            retry=event.retry,
            reason=str(error.code),
            message=error.message,
        )
        if self._early is not None:
            self._early.append(status)
        elif not self.context.closed:
            self.context.send(status)

    def _relay(self, text: str) -> None:
        context = self.context
        if context.closed:
            # Cut off for not reading (or gone): the handler is cancelled only once the
            # socket has closed, up to a second later. Stop paying for text nobody reads.
            self.stop(StopReason.CLIENT_GONE)
        elif self._early is not None:
            self._early.append(text)
        else:
            context.send_delta(self._frame, text)

    def _stored(self, storing: "asyncio.Future[MessageRow | None]") -> None:
        if _failed(storing):
            # No reply can be kept without its message: close the request.
            self.stop(StopReason.MESSAGE_NOT_STORED)
        else:
            self._announce()

    def _announce(self) -> None:
        if self._early is None or self._start is None:
            return
        waiting, self._early = self._early, None
        self.context.send(self._start)
        for item in waiting:
            if isinstance(item, str):
                self.context.send_delta(self._frame, item)
            else:
                self.context.send(item)

    @property
    def _shut_down(self) -> bool:
        """Stopped by the shutdown alone, the client still here and not cancelling."""
        return self._reasons == {StopReason.SHUTDOWN} and not self._handler_cancelled

    def _stop_reason(self, billed: BilledRequest) -> str:
        if self._shut_down:
            return SHUTDOWN
        if self._reasons:
            return CANCELLED
        return billed.stop_reason or "error"

    def _error(self, billed: BilledRequest) -> GatewayError | None:
        if self._shut_down:
            # Tell the client why its reply stopped.
            return shutting_down()
        return None if self._reasons else billed.error

    async def _finish(
        self,
        billed: BilledRequest,
        storing: "asyncio.Future[MessageRow | None]",
        user_message: NewMessage,
    ) -> tuple[Settlement | None, GatewayError | None]:
        """Settle after the user's message is stored; no settlement if it was not.

        Without its message no reply is kept (it would answer nothing in the history), but
        the tokens Anthropic reported are still recorded: tokens billed are never dropped.
        """
        stored = await _settled(storing) is not None
        stop_reason = self._stop_reason(billed) if stored else "message_not_stored"
        error = self._error(billed)
        text = billed.text
        reply = None
        if text and stored:
            reply = NewMessage(
                user_message.session_id,
                "assistant",
                text,
                token_count=billed.counts.output_tokens or None,
                complete=error is None and not self._reasons,
                request_id=user_message.request_id,
            )
        settlement = await billed.settle(stop_reason=stop_reason, reply=reply)
        return (settlement if stored else None), error


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


def _error_frame(error: GatewayError, request_id: str, settlement: Settlement) -> ErrorMessage:
    return ErrorMessage(
        code=error.code,
        message=error.message,
        request_id=request_id,
        details=error.details,
        retryable=error.retryable,
        retry_after_ms=error.retry_after_ms,
        usage=wire_usage(settlement.counts, estimated=settlement.output_estimated),
        cost=wire_cost(settlement.cost),
    )


def message_not_stored(problem: StorageProblem | None = None) -> GatewayError:
    if problem is not None:
        return GatewayError(
            ErrorCode.STORAGE_UNAVAILABLE,
            "Your message could not be stored, so its request was stopped and nothing of "
            f"the reply was kept (any tokens already billed are in the usage ledger). {problem} "
            "Then send it again.",
            problem.details(),
            retryable=True if problem.kind == "locked" else None,
        )
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
