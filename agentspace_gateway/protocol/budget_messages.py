"""budget.status, its reply, and the budget.alert event a watching connection receives.

Not in messages.py's SERVER_MESSAGES: the budget.status handler publishes them as its
replies, as any plugin's would be.
"""

from typing import ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.message_base import REQUEST_ID, ClientMessage, ServerMessage
from agentspace_gateway.protocol.validators import about

_NANOS = "Exact integer nano-dollars (10^-9 USD): {0}"
SCOPE = "What the budget caps: global (everything), client (a client key), session or agent."
SCOPE_ID = "The client key's id, the session id or the agent id; '' for a global budget."
PERIOD = "day or month (calendar, in the gateway's [budgets] time_zone) or total."
RESETS_AT = (
    "When the period ends and spend starts again from zero: ISO 8601 UTC, milliseconds. "
    "Left out for a total budget, which never resets."
)


@frozen(kw_only=True)
class BudgetStatus(ClientMessage):
    """Every budget as it stands now. Answered with budget.status.result; with watch, the
    connection also receives budget.alert events until it closes or sends watch false."""

    type: ClassVar[str] = "budget.status"
    watch: bool | None = field(
        default=None,
        metadata=about(
            "true: also send this connection every budget.alert from now on; false: stop "
            "sending them. Left out (or null): leave watching as it is."
        ),
    )


@frozen(kw_only=True)
class BudgetStanding:
    """One budget: its limit, the spend of its current period, and what is reserved."""

    scope: str = field(metadata=about(SCOPE))
    scope_id: str = field(metadata=about(SCOPE_ID))
    client: str | None = field(
        default=None,
        metadata=about("For a client budget, the client key's name; absent otherwise."),
    )
    period: str = field(metadata=about(PERIOD))
    limit_nanos: int = field(metadata=about(_NANOS.format("the most the period may spend.")))
    spent_nanos: int = field(
        metadata=about(_NANOS.format("the priced cost of the period's usage so far."))
    )
    reserved_nanos: int = field(
        metadata=about(_NANOS.format("the worst-case cost held for requests still running."))
    )
    remaining_nanos: int = field(
        metadata=about(_NANOS.format("limit - spent - reserved, never below 0."))
    )
    resets_at: str | None = field(default=None, metadata=about(RESETS_AT))
    clip_max_tokens: bool = field(
        metadata=about(
            "true: a request that does not fit has its max_tokens lowered to fit; false: it "
            "is refused with BUDGET_EXCEEDED."
        )
    )


@frozen(kw_only=True)
class BudgetStatusResult(ServerMessage):
    """The reply to budget.status: every budget, by scope, scope id and period."""

    type: ClassVar[str] = "budget.status.result"
    request_id: str = field(metadata=about(REQUEST_ID))
    budgets: list[BudgetStanding] = field(metadata=about("Every budget; [] when none is set."))
    watching: bool = field(
        metadata=about("Whether this connection now receives budget.alert events.")
    )


@frozen(kw_only=True)
class BudgetAlertEvent(ServerMessage):
    """A budget's settled spend reached one of its alert thresholds ([budgets]
    alert_thresholds); sent once per budget, threshold and period to the connections
    watching budgets."""

    type: ClassVar[str] = "budget.alert"
    scope: str = field(metadata=about(SCOPE))
    scope_id: str = field(metadata=about(SCOPE_ID))
    period: str = field(metadata=about(PERIOD))
    threshold_percent: int = field(
        metadata=about("The threshold crossed, in percent of the limit (50, 80, 100 by default).")
    )
    limit_nanos: int = field(metadata=about(_NANOS.format("the budget's limit.")))
    spent_nanos: int = field(
        metadata=about(_NANOS.format("the period's spend when it was crossed."))
    )
    reserved_nanos: int = field(
        metadata=about(_NANOS.format("what requests under way held reserved then, for context."))
    )
    resets_at: str | None = field(default=None, metadata=about(RESETS_AT))
