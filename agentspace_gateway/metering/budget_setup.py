"""The budget room of the running gateway: its store, the door-facing check and alerts.

Built after the chat room, whose metering pipeline it joins: from then on every door's
``Metering.admit`` reserves against budgets. Before the app serves, reservations a dead
process left open are settled (their usage rows hold what was spent).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import attrs
from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.metering.budget_alerting import ThresholdAlerts
from agentspace_gateway.metering.budget_alerts import BudgetAlerts
from agentspace_gateway.metering.budget_headers import add_clipped_header
from agentspace_gateway.metering.budgets import Budgets
from agentspace_gateway.storage.budget_list import BudgetReader
from agentspace_gateway.storage.budgets import BudgetStore
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracyReader

log = logging.getLogger(__name__)


@attrs.frozen
class BudgetServices:
    store: BudgetStore
    budgets: Budgets
    alerts: BudgetAlerts


BUDGETS = web.AppKey("budgets", BudgetServices)


async def budget_context(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    database = app[appkeys.DATABASE]
    store = BudgetStore(
        database, ZoneInfo(config.budgets.time_zone), config.budgets.alert_thresholds
    )
    abandoned = await store.settle_abandoned()
    if abandoned:
        log.warning(
            "budgets: settled %d reservation(s) a stopped gateway left open; their usage rows"
            " hold what was spent",
            abandoned,
        )
    alerts = BudgetAlerts()
    telling = ThresholdAlerts(alerts, app[appkeys.AUDIT_LOG])
    chat = app[CHAT]
    reader = await BudgetReader.open(database.path)
    budgets = Budgets(
        store,
        chat.price_book,
        EstimateAccuracyReader(database),
        on_crossed=telling.crossed,
        reader=reader,
    )
    app[BUDGETS] = BudgetServices(store=store, budgets=budgets, alerts=alerts)
    chat.metering.use_budgets(budgets)
    try:
        yield
    finally:
        await telling.flush()
        await reader.close()


def setup_budgets(app: web.Application) -> None:
    # After setup_chat: the budget check prices requests with the chat room's price book.
    app.cleanup_ctx.append(budget_context)
    app.on_response_prepare.append(add_clipped_header)
