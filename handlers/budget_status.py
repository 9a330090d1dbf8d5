"""budget.status: every budget as it stands (limit, spend of its period, reservations, what
remains, when it resets), in integer nano-dollars; with ``watch``, budget.alert events too."""

from datetime import UTC, datetime

from agentspace_gateway import appkeys
from agentspace_gateway.budget_watches import BUDGET_WATCHES
from agentspace_gateway.metering.budget_alerts import BudgetAlert
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.budget_messages import (
    BudgetAlertEvent,
    BudgetStanding,
    BudgetStatus,
    BudgetStatusResult,
)
from agentspace_gateway.storage.budgets import Standing
from agentspace_gateway.storage.client_keys import ClientKeyRepository


@handles(BudgetStatus, replies=[BudgetStatusResult, BudgetAlertEvent])
async def budget_status(context: ConnectionContext, message: BudgetStatus) -> None:
    watches = context.app[BUDGET_WATCHES]
    services = context.app[BUDGETS]
    began = False
    # Before the first await: a watch: false sent right behind this request must find it.
    if message.watch is True:
        began = watches.begin(
            context,
            services.alerts,
            lambda alert: (
                context.send(alert_event(alert))
                if visible(context, alert.scope_kind, alert.scope_id)
                else None
            ),
        )
    elif message.watch is False:
        watches.stop(context)
    try:
        standings = [
            standing
            for standing in await services.store.standings(datetime.now(UTC))
            if visible(context, standing.budget.scope_kind, standing.budget.scope_id)
        ]
        names: dict[int, str] = {}
        if any(standing.budget.scope_kind == "client" for standing in standings):
            keys = await ClientKeyRepository(context.app[appkeys.DATABASE]).list_all()
            names = {key.id: key.name for key in keys}
        context.send(
            BudgetStatusResult(
                request_id=message.id,
                budgets=[standing_of(standing, names) for standing in standings],
                watching=message.watch is not False and watches.watching(context),
            )
        )
        if began:
            # Held here until watch: false, or the connection's end cancels this task.
            await watches.wait(context)
    finally:
        if began:
            watches.end(context)


def visible(context: ConnectionContext, scope_kind: str, scope_id: str) -> bool:
    """The owner sees every budget; a connection on a client key sees the budgets that
    apply to every request it makes (its own key's and the global one), no one else's."""
    client = context.client
    if client is None:
        return True
    return scope_kind == "global" or (scope_kind == "client" and scope_id == str(client.id))


def standing_of(standing: Standing, client_names: dict[int, str]) -> BudgetStanding:
    budget = standing.budget
    client = None
    if budget.scope_kind == "client":
        client = client_names.get(int(budget.scope_id))
    return BudgetStanding(
        scope=budget.scope_kind,
        scope_id=budget.scope_id,
        client=client,
        period=budget.period,
        limit_nanos=budget.limit_nanousd,
        spent_nanos=standing.spent_nanousd,
        reserved_nanos=standing.reserved_nanousd,
        remaining_nanos=standing.remaining_nanousd,
        resets_at=standing.resets_at,
        clip_max_tokens=budget.clip_max_tokens,
    )


def alert_event(alert: BudgetAlert) -> BudgetAlertEvent:
    return BudgetAlertEvent(
        scope=alert.scope_kind,
        scope_id=alert.scope_id,
        period=alert.period,
        threshold_percent=alert.threshold_percent,
        limit_nanos=alert.limit_nanousd,
        spent_nanos=alert.spent_nanousd,
        reserved_nanos=alert.reserved_nanousd,
        resets_at=alert.resets_at,
    )
