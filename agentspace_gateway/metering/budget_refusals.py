"""What a refused request is told, the same in every door's own envelope.

The WebSocket sends ``details`` as they are (money in integer nano-dollars, named with the
protocol's ``Nanos`` suffix); the HTTP doors send the message, which says the same in words.
"""

from __future__ import annotations

from typing import Any

from agentspace_gateway.metering.budgets import Refused, Unpriceable
from agentspace_gateway.pricing import usd_text
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

# The HTTP doors' answer says not to retry: the budget, not the moment, stands in the way.
SHOULD_RETRY = "x-should-retry"


def refusal_message(refused: Refused) -> str:
    if isinstance(refused, Unpriceable):
        return (
            f"Budget check: the model {refused.model!r} has no known price, so the most this "
            "request could cost cannot be bounded while a budget applies to it; nothing was "
            'sent upstream. Give it a price in the configuration ([pricing."MODEL"], or '
            "[pricing.unknown_model] for every unknown model), or use a priced model."
        )
    standing = refused.standing
    budget = standing.budget
    scope = "global" if budget.scope_kind == "global" else f"{budget.scope_kind} {budget.scope_id}"
    period = {"day": "daily", "month": "monthly", "total": "total"}[budget.period]
    resets = f" It resets at {standing.resets_at}." if standing.resets_at else ""
    return (
        f"Budget exceeded: the {period} budget of {scope} ({usd_text(budget.limit_nanousd)} USD)"
        f" has {usd_text(standing.remaining_nanousd)} USD left (spent"
        f" {usd_text(standing.spent_nanousd)}, reserved {usd_text(standing.reserved_nanousd)}"
        f" by requests under way), and this request may cost up to"
        f" {usd_text(refused.needed_nanousd)} USD (its input and all of its max_tokens);"
        f" nothing was sent upstream.{resets} Lower max_tokens, or raise the limit with:"
        " agentspace-gateway budgets set"
    )


def refusal_details(refused: Refused) -> dict[str, Any]:
    if isinstance(refused, Unpriceable):
        return {"reason": "unpriceable", "model": refused.model}
    standing = refused.standing
    budget = standing.budget
    return {
        "reason": "limit",
        "scopeKind": budget.scope_kind,
        "scopeId": budget.scope_id,
        "period": budget.period,
        "limitNanos": budget.limit_nanousd,
        "spentNanos": standing.spent_nanousd,
        "reservedNanos": standing.reserved_nanousd,
        "neededNanos": refused.needed_nanousd,
        "resetsAt": standing.resets_at,
    }


def budget_exceeded(refused: Refused) -> GatewayError:
    return GatewayError(
        ErrorCode.BUDGET_EXCEEDED,
        refusal_message(refused),
        refusal_details(refused),
        retryable=False,
    )
