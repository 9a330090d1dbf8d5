"""The budget check every door makes before it sends a request upstream.

A request is reserved at its worst case: the input estimate, scaled up by the largest ratio
of actual to estimated input measured for the model and a safety margin, priced at the
dearest input-side rate (a cache write costs more than plain input), plus ``max_tokens`` of
output. The reservation is released once the request's usage row is written; until then it
holds its worst case against every budget that applies.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import attrs

from agentspace_gateway.pricing import ModelPrices, PriceBook
from agentspace_gateway.storage.budget_crossings import Crossing
from agentspace_gateway.storage.budget_list import BudgetReader
from agentspace_gateway.storage.budgets import (
    BudgetStore,
    Refusal,
    Reservation,
    Scope,
)
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracyReader

# On top of the largest measured under-estimate: the next prompt may be off by more.
SAFETY_MARGIN = Decimal("1.25")
_NANOUSD_PER_TOKEN_AT_1_USD_PER_MTOK = Decimal(1000)


@attrs.frozen
class Admitted:
    """Go ahead, with this ``max_tokens`` (lower than asked if the budget clipped it)."""

    reservation: Reservation | None
    max_tokens: int


@attrs.frozen
class Unpriceable:
    """A budget applies but the model has no price: its cost could not be bounded."""

    model: str


# What a door's refusal is made of: no room in a budget, or no price to bound the cost.
Refused = Refusal | Unpriceable
# The input estimate, or what makes it: made only when a budget applies (an HTTP door's
# body is not tokenised for a gateway without budgets).
InputEstimate = int | Callable[[], Awaitable[int]]
# Told of the alert thresholds a settle found reached (each once per budget and period).
CrossingsSink = Callable[[tuple[Crossing, ...]], None]


async def _estimate(estimate: InputEstimate) -> int:
    if isinstance(estimate, int):
        return estimate
    made = estimate()
    return await made if inspect.isawaitable(made) else made


def _per_token(price_mtok: Decimal) -> Decimal:
    return price_mtok * _NANOUSD_PER_TOKEN_AT_1_USD_PER_MTOK


def _input_rate(prices: ModelPrices) -> Decimal:
    rates = [prices.input_mtok, prices.cache_write_mtok, prices.cache_write_1h_mtok]
    return max(rate for rate in rates if rate is not None)


def worst_case_nanousd(prices: ModelPrices, input_tokens: int, max_tokens: int) -> int:
    """The most a request with this input and ``max_tokens`` can cost, rounded up."""
    exact = input_tokens * _per_token(_input_rate(prices)) + max_tokens * _per_token(
        prices.output_mtok
    )
    return math.ceil(exact)


def _calibrated(estimated_input_tokens: int, measured_ratio: float | None) -> int:
    worst_ratio = Decimal(max(1.0, measured_ratio if measured_ratio is not None else 1.0))
    return math.ceil(estimated_input_tokens * worst_ratio * SAFETY_MARGIN)


def max_tokens_within(prices: ModelPrices, input_tokens: int, allowance_nanousd: int) -> int:
    """The largest ``max_tokens`` whose worst case fits into ``allowance_nanousd``."""
    left = Decimal(allowance_nanousd) - input_tokens * _per_token(_input_rate(prices))
    if left < 0:
        return 0
    per_output = _per_token(prices.output_mtok)
    if per_output == 0:
        return 2**31 - 1
    return int(left / per_output)


class Budgets:
    """Reserve before dispatch, settle after the bill: the door-facing side of budgets."""

    def __init__(
        self,
        store: BudgetStore,
        book: PriceBook,
        accuracy: EstimateAccuracyReader,
        *,
        on_crossed: CrossingsSink | None = None,
        reader: BudgetReader | None = None,
    ) -> None:
        """``reader``: where each request learns which budgets apply (else the store, read
        each time)."""
        self._store = store
        self._reader = reader
        self._book = book
        self._accuracy = accuracy
        self._on_crossed = on_crossed
        # Per model: its largest measured actual/estimated input ratio, as last read.
        self._ratios: dict[str, float | None] = {}

    def none_apply(self, scope: Scope) -> bool:
        """True when, as far as is known without waiting, no budget applies to ``scope``:
        then ``reserve`` would admit it unreserved. False is "not known" as well as "some
        do"; ``reserve`` then decides."""
        listed = None if self._reader is None else self._reader.known()
        return listed is not None and not any(scope.matches(b) for b in listed)

    def _crossed(self, crossed: tuple[Crossing, ...]) -> None:
        if crossed and self._on_crossed is not None:
            self._on_crossed(crossed)

    async def calibrated_input(self, model: str, estimated_input_tokens: int) -> int:
        return _calibrated(estimated_input_tokens, await self._measured_ratio(model))

    async def _measured_ratio(self, model: str) -> float | None:
        """The model's largest measured actual/estimated input ratio, read afresh and kept
        for the next request's one-statement reservation (which checks it is still so)."""
        spread = (await self._accuracy.for_model(model)).spread()
        ratio = None if spread is None else spread.maximum
        self._ratios[model] = ratio
        return ratio

    async def reserve(
        self,
        scope: Scope,
        *,
        request_id: str,
        model: str,
        estimated_input_tokens: InputEstimate,
        max_tokens: int,
        now: datetime | None = None,
    ) -> Admitted | Refusal | Unpriceable:
        moment = now or datetime.now(UTC)
        listed = await (self._reader or self._store).all()
        if not any(scope.matches(b) for b in listed):
            return Admitted(None, max_tokens)
        estimated = await _estimate(estimated_input_tokens)
        if model in self._ratios:
            # The usual case, one statement: it reserves only if every budget has room and
            # the model's measured ratio is still the one kept; else the long way says why.
            ratio = self._ratios[model]
            input_tokens = _calibrated(estimated, ratio)
            prices = self._book.prices_for(model, input_tokens, at=moment)
            if prices is None:
                return Unpriceable(model)
            amount = worst_case_nanousd(prices, input_tokens, max_tokens)
            at_once = await self._store.reserve_at_once(
                scope, request_id, model, amount, moment, ratio
            )
            if at_once is not None:
                return Admitted(at_once, max_tokens)
        input_tokens = _calibrated(estimated, await self._measured_ratio(model))
        prices = self._book.prices_for(model, input_tokens, at=moment)
        if prices is None:
            return Unpriceable(model)
        amount = worst_case_nanousd(prices, input_tokens, max_tokens)
        result = await self._store.reserve(scope, request_id, model, amount, moment)
        if isinstance(result, Refusal) and result.standing.budget.clip_max_tokens:
            fitting = max_tokens_within(prices, input_tokens, result.standing.remaining_nanousd)
            if fitting >= 1:
                clipped = worst_case_nanousd(prices, input_tokens, fitting)
                # Another request may have taken the room since: the store checks again.
                result = await self._store.reserve(scope, request_id, model, clipped, moment)
                if isinstance(result, Reservation):
                    return Admitted(result, fitting)
        if isinstance(result, Refusal):
            return result
        return Admitted(result, max_tokens)

    async def settle(self, admitted: Admitted) -> None:
        if admitted.reservation is not None:
            released = await self._store.release(admitted.reservation.request_id)
            self._crossed(released.crossed)
