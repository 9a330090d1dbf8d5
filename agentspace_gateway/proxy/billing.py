"""All of the proxy's billing, in the shape of the metering pipeline (``Metering.begin`` ->
``BilledRequest.feed`` / ``settle``), built for now on ``UsageLedger.open``,
``ReplyRecorder.record`` and ``PriceBook.cost``.

When ``agentspace_gateway.metering`` lands this module becomes a re-export of it: nothing
else in the proxy counts tokens or writes usage rows.

The row of a request opens with the first usage Anthropic reports (``message_start``), so a
gateway that dies mid-stream still leaves those tokens in the ledger; ``settle`` brings it
up to date once, shielded from the cancellation of a client that left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from attrs import frozen

from agentspace_gateway.llm import anthropic_usage
from agentspace_gateway.pricing import Cost, PriceBook, TokenCounts
from agentspace_gateway.storage import NewUsage, ReplyRecorder, UsageLedger, UsageRecord

log = logging.getLogger(__name__)


@frozen
class UsageReported:
    """Cumulative usage so far (Anthropic's message_start and message_delta report totals)."""

    counts: TokenCounts


@frozen
class TextStreamed:
    text: str


@frozen
class Stopped:
    reason: str


@frozen
class Failed:
    error: str


Event = UsageReported | TextStreamed | Stopped | Failed


@frozen
class Settlement:
    counts: TokenCounts | None  # None: Anthropic reported no usage (nothing was billed)
    cost: Cost
    usage: UsageRecord | None


def merge_usage(previous: TokenCounts | None, report: object) -> TokenCounts:
    """Fold one usage report (Anthropic's JSON) into the counts so far, one-hour cache
    writes included: the same reading chat uses (llm/anthropic_usage.py)."""
    return anthropic_usage.merge_usage(previous or TokenCounts(0, 0), report)


class Metering:
    """One per app: opens a BilledRequest for each upstream request."""

    def __init__(self, ledger: UsageLedger, recorder: ReplyRecorder, prices: PriceBook) -> None:
        self._ledger = ledger
        self._recorder = recorder
        self._prices = prices

    def begin(
        self,
        *,
        session_id: str,
        model: str,
        request_id: str,
        estimated_input_tokens: int | None,
    ) -> BilledRequest:
        return BilledRequest(self, session_id, model, request_id, estimated_input_tokens)

    def _usage(
        self, request: BilledRequest, counts: TokenCounts, stop_reason: str | None
    ) -> tuple[NewUsage, Cost]:
        cost = self._prices.cost(request.model, counts)
        usage = NewUsage.of(
            counts,
            cost,
            session_id=request.session_id,
            model=request.model,
            request_id=request.request_id,
            estimated_input_tokens=request.estimated_input_tokens,
            stop_reason=stop_reason,
        )
        return usage, cost


class BilledRequest:
    def __init__(
        self,
        metering: Metering,
        session_id: str,
        model: str,
        request_id: str,
        estimated_input_tokens: int | None,
    ) -> None:
        self._metering = metering
        self.session_id = session_id
        self.model = model
        self.request_id = request_id
        self.estimated_input_tokens = estimated_input_tokens
        self.counts: TokenCounts | None = None
        self.stop_reason: str | None = None
        self._opening: asyncio.Future[UsageRecord | None] | None = None
        self._settling: asyncio.Future[Settlement] | None = None

    def feed(self, event: Event) -> None:
        if isinstance(event, UsageReported):
            self.counts = event.counts
            if self._opening is None:
                usage, _ = self._metering._usage(self, event.counts, None)
                self._opening = asyncio.ensure_future(self._open(usage))
        elif isinstance(event, Stopped):
            self.stop_reason = event.reason

    async def _open(self, usage: NewUsage) -> UsageRecord | None:
        try:
            return await self._metering._ledger.open(usage)
        except Exception:
            log.exception("proxy %s: the usage row could not be opened", self.request_id)
            return None

    async def settle(self, *, stop_reason: str, reply: Any = None) -> Settlement:
        """Price the request once and write its row; later calls return the same result.
        Runs to its end even if the caller is cancelled meanwhile."""
        if self._settling is None:
            self._settling = asyncio.ensure_future(self._settle(stop_reason))
        return await _outlast(self._settling)

    async def _settle(self, stop_reason: str) -> Settlement:
        opened = None if self._opening is None else await self._opening
        if self.counts is None:
            return Settlement(None, Cost.unpriced(), None)
        usage, cost = self._metering._usage(self, self.counts, stop_reason)
        recorded = await self._metering._recorder.record(
            None, usage, open_usage_id=None if opened is None else opened.id
        )
        return Settlement(self.counts, cost, recorded.usage)


async def _outlast(task: asyncio.Future[Settlement]) -> Settlement:
    """The task's result, waited for however often this task is cancelled meanwhile; the
    cancellation is raised again once it has ended."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()
