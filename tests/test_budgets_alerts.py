"""Alert thresholds fire once per budget, threshold and period, when settled spend reaches
them: a log line, a ``budget.alert`` audit row and a ``BudgetAlert`` to subscribers. The
fired record is written with the settle, so a restarted gateway does not fire again."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from budgets_helpers import (
    App,
    Attempts,
    anthropic_sdk,
    fake_openai_fixture,  # noqa: F401 - the fixture
    gateway_fixture,  # noqa: F401 - the fixture
    rows,
    set_budget,
)

from agentspace_gateway import appkeys
from agentspace_gateway.home import Home
from agentspace_gateway.metering.budget_alerts import BudgetAlert
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.storage import Database, NewUsage, ReplyRecorder, SessionRepository
from agentspace_gateway.storage.budgets import BudgetStore, Scope

from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import MODEL, issue

HI: Any = [{"role": "user", "content": "hi"}]
UTC_ZONE = ZoneInfo("UTC")


async def bill(db: Database, session_id: str, request_id: str, cost: int) -> None:
    usage = NewUsage(
        session_id=session_id,
        model="m",
        input_tokens=1,
        output_tokens=1,
        cost_nanousd=cost,
        request_id=request_id,
    )
    await ReplyRecorder(db).record(None, usage)


async def test_each_threshold_fires_once_as_spend_reaches_it_and_not_again_after_restart(
    db: Database,
) -> None:
    store = BudgetStore(db, UTC_ZONE, (50, 80, 100))
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await store.set("global", "", "day", 1000)
    fired: list[list[int]] = []
    # Spend after each request: 400 (40%), 500 (50%, exactly), 790, 1000 (80% and 100% at once).
    for index, cost in enumerate([400, 100, 290, 210]):
        request_id = f"r{index}"
        await store.reserve(Scope(session_id=session.id), request_id, "m", cost, datetime.now(UTC))
        await bill(db, session.id, request_id, cost)
        released = await store.release(request_id)
        assert released.released
        fired.append([c.threshold_percent for c in released.crossed])
    assert fired == [[], [50], [], [80, 100]]
    crossed = released.crossed[0].standing
    assert (crossed.spent_nanousd, crossed.budget.limit_nanousd) == (1000, 1000)

    # A gateway started again, in the same period: nothing fires twice.
    again = BudgetStore(db, UTC_ZONE, (50, 80, 100))
    await again.reserve(Scope(), "r9", "m", 0, datetime.now(UTC))
    await bill(db, session.id, "r9", 0)
    assert (await again.release("r9")).crossed == ()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def audit_alerts(home: Home) -> list[str]:
    found = rows(home, "SELECT detail FROM audit_log WHERE event = 'budget.alert' ORDER BY id")
    return [row["detail"] for row in found]


async def send(client: App, fake: FakeAnthropic, max_tokens: int, output_tokens: int) -> None:
    # claude-sonnet-4-5: 10 input tokens x $3/MTok + output_tokens x $15/MTok.
    fake.enqueue(Scenario(text_chunks=["ok"], input_tokens=10, output_tokens=output_tokens))
    key = await issue(client, f"k{len(fake.message_requests)}")
    async with anthropic_sdk(client, key.secret, Attempts()) as sdk:
        await sdk.messages.create(model=MODEL, max_tokens=max_tokens, messages=HI)


async def test_an_alert_is_logged_audited_and_published_once_and_survives_a_restart(
    gateway: App,
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, _ = fake_anthropic
    await set_budget(gateway, 1_000_000)  # $0.001
    published: list[BudgetAlert] = []
    gateway.app[BUDGETS].alerts.subscribe(published.append)

    with caplog.at_level(logging.WARNING, "agentspace_gateway.metering.budget_alerting"):
        await send(gateway, fake, max_tokens=40, output_tokens=20)  # 330,000: 33%
        assert published == []
        await send(gateway, fake, max_tokens=40, output_tokens=20)  # 660,000: 66%
        await send(gateway, fake, max_tokens=10, output_tokens=2)  # 720,000: 72%
    [alert] = published
    assert alert == BudgetAlert(
        scope_kind="global",
        scope_id="",
        period="total",
        threshold_percent=50,
        limit_nanousd=1_000_000,
        spent_nanousd=660_000,
        reserved_nanousd=0,
        resets_at=None,
    )
    said = "budget global (total) reached 50% of its limit 0.001 USD: spent 0.00066, reserved 0"
    assert caplog.text.count("reached 50% of its limit") == 1
    assert said in caplog.text
    await until(lambda: audit_alerts(home) == [said])

    # The same home, a new gateway: 50% has fired in this period, 80% has not.
    restarted: App = await make_client(gateway.app[appkeys.CONFIG])
    after: list[BudgetAlert] = []
    restarted.app[BUDGETS].alerts.subscribe(after.append)
    await send(restarted, fake, max_tokens=10, output_tokens=2)  # 780,000: 78%
    assert after == []
    await send(restarted, fake, max_tokens=10, output_tokens=2)  # 840,000: 84%
    assert [a.threshold_percent for a in after] == [80]
    await until(lambda: len(audit_alerts(home)) == 2)
