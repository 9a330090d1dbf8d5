"""The life of one billed request, from its first usage report to its settled row.

The usage row is opened at the first report (Anthropic's message_start carries the input
side), so a gateway that dies mid-stream still has those tokens in the ledger; the next
start marks the row interrupted. ``settle`` prices the final counts once and writes the row
(updating the opened one) together with the reply in one transaction. Whatever ended the
stream (its end, a cancel, a lost client, an upstream fault, shutdown), every token reported
is billed: the settle lands whole even if its caller is cancelled meanwhile, twice.
"""

import asyncio
import logging
from typing import Any

import attrs
from attrs import frozen

from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import Cost, PriceBook, TokenCounts
from agentspace_gateway.protocol.errors import GatewayError
from agentspace_gateway.storage import (
    NewMessage,
    NewUsage,
    ReplyRecorder,
    UsageLedger,
    UsageRecord,
)
from agentspace_gateway.storage.usage import Attribution
from agentspace_gateway.tokens import TokenEstimator

log = logging.getLogger(__name__)

_NOTHING = TokenCounts(0, 0)


@frozen
class Settlement:
    counts: TokenCounts
    cost: Cost
    # None when nothing was reported (the request failed before its stream started).
    usage: UsageRecord | None


class Metering:
    """One per app: where every door begins a billed request."""

    def __init__(
        self,
        ledger: UsageLedger,
        price_book: PriceBook,
        recorder: ReplyRecorder,
        estimator: TokenEstimator,
    ) -> None:
        self.ledger = ledger
        self.price_book = price_book
        self.recorder = recorder
        self.estimator = estimator

    def begin(
        self,
        *,
        session_id: str,
        model: str,
        request_id: str,
        estimated_input_tokens: int | None,
        attribution: Attribution | None = None,
    ) -> "BilledRequest":
        """``attribution``: the client key and agent an HTTP API door bills the row to."""
        return BilledRequest(
            self,
            session_id=session_id,
            model=model,
            request_id=request_id,
            estimated_input_tokens=estimated_input_tokens,
            attribution=attribution,
        )


class BilledRequest:
    """Fed the upstream's events as they come; settled once at the end."""

    def __init__(
        self,
        metering: Metering,
        *,
        session_id: str,
        model: str,
        request_id: str,
        estimated_input_tokens: int | None,
        attribution: Attribution | None = None,
    ) -> None:
        self._metering = metering
        self._attribution = attribution
        self._session_id = session_id
        self._model = model
        self._request_id = request_id
        self._estimated_input_tokens = estimated_input_tokens
        self._counts = _NOTHING
        self._parts: list[str] = []
        self._stop_reason: str | None = None
        self._error: GatewayError | None = None
        self._opening: asyncio.Future[UsageRecord | None] | None = None
        self._settling: asyncio.Future[Settlement] | None = None

    @property
    def counts(self) -> TokenCounts:
        return self._counts

    @property
    def text(self) -> str:
        """Every piece of text streamed so far, joined."""
        return "".join(self._parts)

    @property
    def stop_reason(self) -> str | None:
        """The model's own stop reason, once it has given one."""
        return self._stop_reason

    @property
    def error(self) -> GatewayError | None:
        return self._error

    @property
    def reported(self) -> bool:
        """Whether any usage was reported: a request with none was never billed."""
        return self._opening is not None

    def feed(self, event: StreamEvent) -> None:
        """Take one event; cheap and synchronous, for the hot path."""
        if type(event) is TextStreamed:
            self._parts.append(event.text)
        elif type(event) is UsageReported:
            self._counts = event.counts
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
        elif type(event) is Stopped:
            self._stop_reason = event.reason
        elif type(event) is Failed:
            self._error = event.error

    async def settle(self, *, stop_reason: str, reply: NewMessage | None = None) -> Settlement:
        """Price the final counts once and write the usage row and ``reply`` together.

        ``reply`` without a ``token_estimate`` is estimated here. Settling twice returns the
        first settlement. If the caller is cancelled meanwhile, the write still lands whole
        and the cancellation is raised once it has.
        """
        if self._settling is None:
            self._settling = asyncio.ensure_future(self._settle(stop_reason, reply))
        cancelled = await outlast(self._settling)
        if cancelled:
            raise asyncio.CancelledError
        return self._settling.result()

    def _usage(self, cost: Cost, stop_reason: str | None) -> NewUsage:
        usage = NewUsage.of(
            self._counts,
            cost,
            session_id=self._session_id,
            model=self._model,
            request_id=self._request_id,
            estimated_input_tokens=self._estimated_input_tokens,
            stop_reason=stop_reason,
        )
        if self._attribution is None:
            return usage
        return attrs.evolve(usage, attribution=self._attribution)

    async def _open(self) -> UsageRecord | None:
        """The row as reported so far; None if it could not be opened (logged: settling
        inserts it then)."""
        # Priced too: what a crash leaves in the ledger must carry its cost.
        usage = self._usage(self._metering.price_book.cost(self._model, self._counts), None)
        try:
            return await self._metering.ledger.open(usage)
        except Exception:
            log.exception("request %s: the usage row could not be opened", self._request_id)
            return None

    async def _settle(self, stop_reason: str, reply: NewMessage | None) -> Settlement:
        opened = None if self._opening is None else await self._opening
        cost = self._metering.price_book.cost(self._model, self._counts)
        usage = self._usage(cost, stop_reason) if self.reported else None
        if reply is not None and reply.token_estimate is None:
            estimate = await self._metering.estimator.count_async(reply.content)
            reply = attrs.evolve(reply, token_estimate=estimate)
        record = None
        if reply is not None or usage is not None:
            recorded = await self._metering.recorder.record(
                reply, usage, open_usage_id=None if opened is None else opened.id
            )
            record = recorded.usage
        return Settlement(self._counts, cost, record)


async def outlast(task: "asyncio.Future[Any]") -> bool:
    """Wait for ``task`` to end however often this task is cancelled meanwhile (aiohttp
    cancels a handler twice at shutdown); True if it was cancelled."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
