"""The life of one billed request, from its first usage report to its settled row.

The usage row is opened at the first report (Anthropic's message_start carries the input
side), so a gateway that dies mid-stream still has those tokens in the ledger; the next
start marks the row interrupted. ``settle`` prices the final counts once and writes the row
(updating the opened one) together with the reply in one transaction. Whatever ended the
stream (its end, a cancel, a lost client, an upstream fault, shutdown), every token reported
is billed: the settle lands whole even if its caller is cancelled meanwhile, twice.

A reply cut off before the upstream's final output count (Anthropic's message_start says
``output_tokens: 1`` as a placeholder) is billed ``max(reported, estimate)``: the estimate is
the cl100k count of the text streamed, and the row is flagged ``output_estimated``. A final
count that does arrive (message_delta, with the stop reason) is billed as reported. While the
stream runs, the open row is brought up to the running estimate at most once a second
(``PROGRESS_SECONDS``), so a crash leaves an estimate of all but the last second of text.
The running estimate is kept, not recounted: each count takes only the text streamed since
the last one (``RunningCount``).
An upstream that reports usage only at its end (OpenAI) and is cut before it is billed the
same way, its input side being the request's ``estimated_input_tokens``.
"""

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import attrs
from attrs import frozen

from agentspace_gateway.metering.budgets import Admitted
from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.metering.outlast import outlast
from agentspace_gateway.metering.running_count import RunningCount
from agentspace_gateway.pricing import Cost, TokenCounts
from agentspace_gateway.protocol.errors import GatewayError
from agentspace_gateway.storage import NewMessage, NewUsage, UsageRecord
from agentspace_gateway.storage.usage import IN_PROGRESS, Attribution

if TYPE_CHECKING:
    # Only for the annotation: Metering makes billed requests (``Metering.begin``).
    from agentspace_gateway.metering.meter import Metering

log = logging.getLogger(__name__)

_NOTHING = TokenCounts(0, 0)

# How often, at most, an open row is brought up to the running estimate of the output.
PROGRESS_SECONDS = 1.0


@frozen
class Settlement:
    counts: TokenCounts
    cost: Cost
    # None when nothing was reported (the request failed before its stream started).
    usage: UsageRecord | None
    # True when counts.output_tokens is the estimate of a cut-off reply's streamed text.
    output_estimated: bool = False


class BilledRequest:
    """Fed the upstream's events as they come; settled once at the end."""

    def __init__(
        self,
        metering: "Metering",
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
        self._running = RunningCount()
        self._stop_reason: str | None = None
        self._error: GatewayError | None = None
        self._opening: asyncio.Future[UsageRecord | None] | None = None
        self._settling: asyncio.Future[Settlement] | None = None
        self._progress: asyncio.Handle | asyncio.Future[None] | None = None
        # Counted from the start, so the first update comes a second in, not at the first
        # text: a reply shorter than that (most) is settled without one, a write and a
        # count saved, and a crash still leaves all but its last second estimated.
        self._progressed_at = time.monotonic()
        self._usage_reported = False
        # Set by Metering.admit: the reservation, released once the usage row is written.
        self.admitted: Admitted | None = None
        self.asked_max_tokens = 0

    @property
    def max_tokens(self) -> int | None:
        """The ``max_tokens`` to send upstream, when admitted through a budget check."""
        return None if self.admitted is None else self.admitted.max_tokens

    @property
    def max_tokens_clipped(self) -> int | None:
        """The lowered ``max_tokens`` when a budget clipped the request's; else None."""
        admitted = self.admitted
        if admitted is None or admitted.max_tokens >= self.asked_max_tokens:
            return None
        return admitted.max_tokens

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
        """Whether the request has a usage row: usage was reported, or text streamed (billed
        on estimates when the upstream never reported). A request with neither was never
        billed."""
        return self._opening is not None

    def feed(self, event: StreamEvent) -> None:
        """Take one event; cheap and synchronous, for the hot path."""
        if type(event) is TextStreamed:
            self._parts.append(event.text)
            if self._opening is None:
                # Text before any usage (OpenAI reports usage only at the end): the row is
                # opened on the gateway's estimates, so a cut or a crash still bills it.
                self._opening = asyncio.ensure_future(self._open())
            if self._progress is None:
                self._schedule_progress()
        elif type(event) is UsageReported:
            self._counts = event.counts
            self._usage_reported = True
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

    def _usage(
        self, counts: TokenCounts, cost: Cost, stop_reason: str | None, *, estimated: bool
    ) -> NewUsage:
        return NewUsage.of(
            counts,
            cost,
            session_id=self._session_id,
            model=self._model,
            request_id=self._request_id,
            estimated_input_tokens=self._estimated_input_tokens,
            stop_reason=stop_reason,
            output_estimated=estimated,
            attribution=self._attribution,
        )

    async def _billed_counts(self) -> tuple[TokenCounts, bool]:
        """The counts to bill, and whether the output is the estimate of the streamed text.

        Once the upstream has stopped (its final message_delta carries the stop reason and
        the final count), its figure is billed as is: a complete reply is never
        re-estimated. Before that, the larger of its figure and the estimate wins."""
        counts = self._counts
        if not self._parts:
            return counts, False
        if not self._usage_reported:
            # Text but no report: the input side is the gateway's estimate of the prompt.
            counts = TokenCounts(self._estimated_input_tokens or 0, 0)
        elif self._stop_reason is not None:
            return counts, False
        estimate = await self._running.count(self._metering.estimator, self._parts)
        if estimate <= counts.output_tokens:
            return counts, False
        return attrs.evolve(counts, output_tokens=estimate), True

    def _schedule_progress(self) -> None:
        delay = self._progressed_at + PROGRESS_SECONDS - time.monotonic()
        loop = asyncio.get_running_loop()
        self._progress = loop.call_later(max(delay, 0.0), self._start_progress)

    def _start_progress(self) -> None:
        if self._settling is not None:
            return
        self._progress = asyncio.ensure_future(self._bring_up_to_date())

    async def _bring_up_to_date(self) -> None:
        """Write the running estimate into the open row, so a crash leaves it billed."""
        try:
            opened = None if self._opening is None else await self._opening
            if opened is not None and self._settling is None:
                counts, estimated = await self._billed_counts()
                if estimated:
                    cost = self._metering.price_book.cost(self._model, counts)
                    usage = self._usage(counts, cost, IN_PROGRESS, estimated=True)
                    await self._metering.ledger.progress(opened.id, usage)
        except Exception:
            log.exception("request %s: the open usage row was not updated", self._request_id)
        finally:
            self._progressed_at = time.monotonic()
            self._progress = None

    async def _open(self) -> UsageRecord | None:
        """The row as reported so far; None if it could not be opened (logged: settling
        inserts it then)."""
        # Priced too: what a crash leaves in the ledger must carry its cost.
        counts = self._counts
        if not self._usage_reported:
            counts = TokenCounts(self._estimated_input_tokens or 0, 0)
        cost = self._metering.price_book.cost(self._model, counts)
        usage = self._usage(counts, cost, None, estimated=False)
        try:
            return await self._metering.ledger.open(usage)
        except Exception:
            log.exception("request %s: the usage row could not be opened", self._request_id)
            return None

    async def _settle(self, stop_reason: str, reply: NewMessage | None) -> Settlement:
        opened = None if self._opening is None else await self._opening
        progress = self._progress
        if isinstance(progress, asyncio.Handle):
            progress.cancel()
        elif progress is not None:
            await asyncio.wait([progress])  # its write first, so the final one comes last
        counts, estimated = await self._billed_counts()
        cost = self._metering.price_book.cost(self._model, counts)
        usage = (
            self._usage(counts, cost, stop_reason, estimated=estimated) if self.reported else None
        )
        if reply is not None and reply.token_estimate is None:
            estimate = await self._metering.estimator.count_async(reply.content)
            reply = attrs.evolve(reply, token_estimate=estimate)
        if reply is not None and estimated:
            # The reply's count is the one billed, not message_start's placeholder.
            reply = attrs.evolve(reply, token_count=counts.output_tokens)
        record = None
        if reply is not None or usage is not None:
            recorded = await self._metering.recorder.record(
                reply, usage, open_usage_id=None if opened is None else opened.id
            )
            record = recorded.usage
        if self.admitted is not None:
            # After the row: until it is written, the reservation holds the request's cost.
            await self._metering.release(self.admitted, self._request_id)
        return Settlement(counts, cost, record, estimated)
