"""What budgets are made of: scopes, periods, budgets as stored, standings and outcomes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import attrs

from agentspace_gateway.clock import format_utc

if TYPE_CHECKING:
    from agentspace_gateway.storage.budget_crossings import Crossing

ScopeKind = Literal["client", "session", "agent", "global"]
Period = Literal["day", "month", "total"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("client", "session", "agent", "global")
PERIODS: tuple[Period, ...] = ("day", "month", "total")


class BudgetError(ValueError):
    """A budget operation the caller can correct (bad scope, period or amount)."""


@attrs.frozen
class Budget:
    id: int
    scope_kind: ScopeKind
    scope_id: str
    period: Period
    limit_nanousd: int
    clip_max_tokens: bool
    created_at: str


@attrs.frozen
class Scope:
    """What a request is attributed to: each budget whose scope matches applies to it."""

    session_id: str | None = None
    client_key_id: int | None = None
    agent_id: str | None = None

    def matches(self, budget: Budget) -> bool:
        match budget.scope_kind:
            case "global":
                return True
            case "session":
                return budget.scope_id == self.session_id
            case "client":
                return self.client_key_id is not None and budget.scope_id == str(self.client_key_id)
            case "agent":
                return budget.scope_id == self.agent_id


@attrs.frozen
class Standing:
    """One budget as it stands: spend in the current period and what is reserved."""

    budget: Budget
    spent_nanousd: int
    reserved_nanousd: int
    resets_at: str | None

    @property
    def remaining_nanousd(self) -> int:
        return max(0, self.budget.limit_nanousd - self.spent_nanousd - self.reserved_nanousd)


@attrs.frozen
class Reservation:
    request_id: str
    amount_nanousd: int


@attrs.frozen
class Released:
    """A settle: whether an open reservation was released, and thresholds crossed by it."""

    released: bool
    crossed: tuple[Crossing, ...] = ()


@attrs.frozen
class Refusal:
    """The tightest budget the request did not fit into, and what it needed."""

    standing: Standing
    needed_nanousd: int


def period_bounds(period: Period, now: datetime, zone: ZoneInfo) -> tuple[str | None, str | None]:
    """The start and end of the period holding ``now``, as stored UTC text (None: unbounded)."""
    if period == "total":
        return None, None
    local = now.astimezone(zone)
    if period == "day":
        start_day = local.date()
        end_day = start_day + timedelta(days=1)
    else:
        start_day = local.date().replace(day=1)
        end_day = (start_day + timedelta(days=32)).replace(day=1)
    start = datetime.combine(start_day, time(), tzinfo=zone)
    end = datetime.combine(end_day, time(), tzinfo=zone)
    return format_utc(start), format_utc(end)
