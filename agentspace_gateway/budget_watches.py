"""Which WebSocket connections watch budget alerts, each until it says stop or goes away.

A watch is held by the budget.status request that started it: that handler task keeps the
subscription to the alert hub and waits. ``stop`` (a later ``watch: false``) ends the wait;
the connection's end cancels the task, as it cancels every handler still running on it.
Either way the ``finally`` unsubscribes, so a closed connection is never sent an alert and
never kept alive by the hub. The cost is one of the connection's in-flight slots
(``[gateway] max_inflight_messages``) for as long as it watches, as a running chat stream.
"""

import asyncio
from collections.abc import Callable

from aiohttp import web

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.metering.budget_alerts import BudgetAlert, BudgetAlerts


class BudgetWatches:
    def __init__(self) -> None:
        # Per watching connection: what ends its wait, and its unsubscribe.
        self._watches: dict[ConnectionContext, tuple[asyncio.Event, Callable[[], None]]] = {}

    def watching(self, context: ConnectionContext) -> bool:
        return context in self._watches

    def begin(
        self, context: ConnectionContext, alerts: BudgetAlerts, send: Callable[[BudgetAlert], None]
    ) -> bool:
        """Subscribe ``send`` for ``context`` at once (before the caller's first await, so a
        ``watch: false`` right behind the request finds it). False: it already watches."""
        if context in self._watches:
            return False
        self._watches[context] = (asyncio.Event(), alerts.subscribe(send))
        return True

    async def wait(self, context: ConnectionContext) -> None:
        """Until ``stop(context)``; the caller ends the watch (``end``) however this ends."""
        await self._watches[context][0].wait()

    def end(self, context: ConnectionContext) -> None:
        stop, unsubscribe = self._watches.pop(context)
        unsubscribe()
        stop.set()

    def stop(self, context: ConnectionContext) -> None:
        watch = self._watches.get(context)
        if watch is not None:
            watch[0].set()


BUDGET_WATCHES = web.AppKey("budget_watches", BudgetWatches)


def setup_budget_watches(app: web.Application) -> None:
    app[BUDGET_WATCHES] = BudgetWatches()
