"""The budget room of the running gateway: its store, the door-facing check and alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import attrs
from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.metering.budget_alerts import BudgetAlerts
from agentspace_gateway.metering.budgets import Budgets
from agentspace_gateway.storage.budgets import BudgetStore
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracyReader


@attrs.frozen
class BudgetServices:
    store: BudgetStore
    budgets: Budgets
    alerts: BudgetAlerts


BUDGETS = web.AppKey("budgets", BudgetServices)


async def budget_context(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    database = app[appkeys.DATABASE]
    store = BudgetStore(database, ZoneInfo(config.budgets.time_zone))
    app[BUDGETS] = BudgetServices(
        store=store,
        budgets=Budgets(store, app[CHAT].price_book, EstimateAccuracyReader(database)),
        alerts=BudgetAlerts(),
    )
    yield


def setup_budgets(app: web.Application) -> None:
    # After setup_chat: the budget check prices requests with the chat room's price book.
    app.cleanup_ctx.append(budget_context)
