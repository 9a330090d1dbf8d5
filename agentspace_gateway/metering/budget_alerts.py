"""Budget alerts: a threshold of a budget crossed, told to whoever watches.

The metering side publishes an alert once per budget, threshold and period; the WebSocket
side subscribes each connection that watches budgets. Subscribers are plain callables run
on the event loop: one that raises is logged and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS_PERCENT: tuple[int, ...] = (50, 80, 100)


@attrs.frozen
class BudgetAlert:
    """A budget's settled spend reached ``threshold_percent`` of its limit (``reserved``:
    what requests under way held at that moment, for context)."""

    scope_kind: str
    scope_id: str
    period: str
    threshold_percent: int
    limit_nanousd: int
    spent_nanousd: int
    reserved_nanousd: int
    # When the period ends and the budget starts again (None for a total budget).
    resets_at: str | None


Subscriber = Callable[[BudgetAlert], None]


class BudgetAlerts:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every alert from now on; returns the unsubscribe."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, alert: BudgetAlert) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(alert)
            except Exception:
                log.exception("a budget alert subscriber failed")
