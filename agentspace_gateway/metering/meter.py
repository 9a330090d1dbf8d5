"""Where every door begins a billed request (``Metering``, one per app); the request's own life,
from its first usage report to its settled row, is ``billed_request.py``'s.

Budgets sit on the same path: a door opens its billed request with ``admit``, which reserves
the request's worst case against every budget that applies (or refuses it, and nothing goes
upstream), and the settle releases the reservation once the usage row is written.
"""

import asyncio
import logging

from agentspace_gateway.metering.billed_request import BilledRequest
from agentspace_gateway.metering.budgets import Admitted, Budgets, InputEstimate, Refused
from agentspace_gateway.metering.outlast import outlast
from agentspace_gateway.pricing import PriceBook
from agentspace_gateway.storage import ReplyRecorder, UsageLedger
from agentspace_gateway.storage.budgets import Scope
from agentspace_gateway.storage.usage import Attribution
from agentspace_gateway.tokens import TokenEstimator

log = logging.getLogger(__name__)


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
        self._budgets: Budgets | None = None

    def use_budgets(self, budgets: Budgets) -> None:
        """Set once by the budget room at startup (it is built after this one, from the same
        price book): from then on ``admit`` reserves against budgets."""
        self._budgets = budgets

    async def admit(
        self,
        scope: Scope,
        *,
        session_id: str,
        model: str,
        request_id: str,
        max_tokens: int,
        estimated_input_tokens: int | None,
        input_for_budget: InputEstimate | None = None,
        attribution: Attribution | None = None,
    ) -> "BilledRequest | Refused":
        """Reserve the request's worst case, then begin its billed request; or the refusal.

        ``max_tokens``: the most output the request may bring (what it asked, else the
        default its door sends). ``input_for_budget``: the input estimate the reservation
        is priced on, when it differs from the row's ``estimated_input_tokens`` (made only
        if a budget applies). The billed request's ``max_tokens`` is what to send upstream:
        lower than asked when a budget clipped it.
        """
        admitted = Admitted(None, max_tokens)
        # Most requests have no budget over them: they are told so without a task and the
        # two turns of the loop it costs to wait for one.
        if self._budgets is not None and not self._budgets.none_apply(scope):
            estimate = input_for_budget if input_for_budget is not None else estimated_input_tokens
            reserving = asyncio.ensure_future(
                self._budgets.reserve(
                    scope,
                    request_id=request_id,
                    model=model,
                    estimated_input_tokens=estimate or 0,
                    max_tokens=max_tokens,
                )
            )
            # A reservation made for a caller cancelled meanwhile is released, never left.
            cancelled = await outlast(reserving)
            decided = reserving.result()
            if cancelled:
                if isinstance(decided, Admitted):
                    await outlast(asyncio.ensure_future(self.release(decided, request_id)))
                raise asyncio.CancelledError
            if not isinstance(decided, Admitted):
                return decided
            admitted = decided
        billed = self.begin(
            session_id=session_id,
            model=model,
            request_id=request_id,
            estimated_input_tokens=estimated_input_tokens,
            attribution=attribution,
        )
        billed.admitted = admitted
        billed.asked_max_tokens = max_tokens
        return billed

    async def release(self, admitted: Admitted, request_id: str) -> None:
        if admitted.reservation is None or self._budgets is None:
            return
        try:
            await self._budgets.settle(admitted)
        except Exception:
            # Held until the next start settles it: the limit errs on the side of spending less.
            log.exception("request %s: its budget reservation was not released", request_id)

    def begin(
        self,
        *,
        session_id: str,
        model: str,
        request_id: str,
        estimated_input_tokens: int | None,
        attribution: Attribution | None = None,
    ) -> "BilledRequest":
        """``attribution``: the client key and agent an HTTP API door bills the row to.

        A door calls ``admit``, never this: a request begun here holds no reservation, so no
        budget would count it until its row is written."""
        return BilledRequest(
            self,
            session_id=session_id,
            model=model,
            request_id=request_id,
            estimated_input_tokens=estimated_input_tokens,
            attribution=attribution,
        )
