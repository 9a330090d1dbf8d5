"""The reservation statement reads the model's measured ratio from an index alone.

Every reservation reads the model's 500 most recent measured requests; looked up row by row
in the table that read was most of the statement's time (docs/performance.md, "fifth pass").
Migration 0008's index holds what the read needs, in its order, so SQLite walks it alone.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from agentspace_gateway.storage import Database
from agentspace_gateway.storage.budget_model import period_bounds
from agentspace_gateway.storage.budget_reservation import reservation_statement

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def plan_of(db: Database, sql: str, params: dict[str, object]) -> list[str]:
    def explain(raw: sqlite3.Connection) -> list[str]:
        return [str(row[3]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]

    return await db.read_in_one_trip(explain)


async def test_the_measured_ratio_is_read_from_the_covering_index(db: Database) -> None:
    zone = ZoneInfo("UTC")
    sql, params = reservation_statement(
        whole_hours=True,
        day=period_bounds("day", NOW, zone),
        month=period_bounds("month", NOW, zone),
        session_id="s1",
        client_key_id=1,
        agent_id=None,
        request_id="r1",
        model="claude-sonnet-4-5",
        amount_nanousd=1,
        now="2026-12-06T12:00:00.000Z",
        measured_ratio=None,
    )
    plan = await plan_of(db, sql, params)
    reads = [step for step in plan if "usage_records USING" in step and "(model=?)" in step]
    assert reads == [
        "SEARCH usage_records USING COVERING INDEX usage_records_model_measured (model=?)"
    ]
    # Walked in the order the read wants: no sort of the model's rows.
    assert not any("TEMP B-TREE" in step for step in plan)
