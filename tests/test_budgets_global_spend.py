"""A global budget's spend is read from the hourly sums, a session's from the ledger rows:
both must give the same figure for every period, in a zone on whole hours (UTC) and in one
on half hours (Asia/Kolkata, where the period is read from the rows instead)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentspace_gateway.storage import Database, NewUsage, ReplyRecorder, SessionRepository
from agentspace_gateway.storage.budgets import BudgetStore


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
async def test_global_spend_is_the_ledgers_in_every_period_and_zone(
    db: Database, zone: str
) -> None:
    session = await SessionRepository(db).create(agent_id="main", model="m")
    costs = [1_234, 56_789, 0, 987_654_321]
    for index, cost in enumerate(costs):
        usage = NewUsage(
            session_id=session.id,
            model=f"m{index % 2}",
            input_tokens=1,
            output_tokens=1,
            cost_nanousd=cost,
            priced=cost > 0,
            request_id=f"r{index}",
        )
        await ReplyRecorder(db).record(None, usage)
    store = BudgetStore(db, ZoneInfo(zone))
    for period in ("day", "month", "total"):
        await store.set("global", "", period, 10**12)
        await store.set("session", session.id, period, 10**12)
    standings = await store.standings(datetime.now(UTC))
    assert len(standings) == 6
    for standing in standings:
        assert standing.spent_nanousd == sum(costs), standing.budget
