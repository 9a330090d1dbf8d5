"""A threshold crossed, told three ways: a log line, an audit row and a ``BudgetAlert``.

The store has already recorded the crossing as fired (in the transaction that found it), so
each reaches here once per budget, threshold and period, restarts included. Telling is
synchronous but the audit row, which is written in the background and waited for at
shutdown: a settle never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

from agentspace_gateway.metering.budget_alerts import BudgetAlert, BudgetAlerts
from agentspace_gateway.pricing import usd_text
from agentspace_gateway.storage import AuditLog
from agentspace_gateway.storage.budget_crossings import Crossing

log = logging.getLogger(__name__)


class BudgetEvent(StrEnum):
    # A budget's spend (settled plus reserved) reached one of its alert thresholds.
    ALERT = "budget.alert"


def alert_of(crossing: Crossing) -> BudgetAlert:
    standing = crossing.standing
    budget = standing.budget
    return BudgetAlert(
        scope_kind=budget.scope_kind,
        scope_id=budget.scope_id,
        period=budget.period,
        threshold_percent=crossing.threshold_percent,
        limit_nanousd=budget.limit_nanousd,
        spent_nanousd=standing.spent_nanousd,
        reserved_nanousd=standing.reserved_nanousd,
        resets_at=standing.resets_at,
    )


def describe(alert: BudgetAlert) -> str:
    scope = alert.scope_kind if not alert.scope_id else f"{alert.scope_kind} {alert.scope_id}"
    return (
        f"budget {scope} ({alert.period}) reached {alert.threshold_percent}% of its limit"
        f" {usd_text(alert.limit_nanousd)} USD: spent {usd_text(alert.spent_nanousd)},"
        f" reserved {usd_text(alert.reserved_nanousd)}"
    )


class ThresholdAlerts:
    def __init__(self, alerts: BudgetAlerts, audit_log: AuditLog) -> None:
        self._alerts = alerts
        self._audit_log = audit_log
        self._writing: set[asyncio.Task[None]] = set()

    def crossed(self, crossings: tuple[Crossing, ...]) -> None:
        for crossing in crossings:
            alert = alert_of(crossing)
            text = describe(alert)
            log.warning("%s", text)
            task = asyncio.ensure_future(self._audit(text))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
            self._alerts.publish(alert)

    async def _audit(self, text: str) -> None:
        try:
            await self._audit_log.record(BudgetEvent.ALERT, detail=text)
        except Exception:
            log.exception("the audit row of a budget alert was not written: %s", text)

    async def flush(self) -> None:
        while self._writing:
            await asyncio.wait(set(self._writing))
