"""A usage row opened when a stream starts: brought up to date at its end, or, after a crash,
kept with what was reported by then and marked interrupted at the next start."""

import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.home import Home
from agentspace_gateway.storage import (
    Database,
    NewUsage,
    ReplyRecorder,
    SessionRepository,
    SessionRow,
    UsageLedger,
    apply_migrations,
)
from agentspace_gateway.storage.usage import IN_PROGRESS, INTERRUPTED

from chat_helpers import eventually, stream_started, until_end, usage_rows
from fake_anthropic import Scenario
from wsclient import request


def usage(
    session: SessionRow, *, output: int, cost: int, stop: str | None, request: str = "exchange-1"
) -> NewUsage:
    return NewUsage(
        session_id=session.id,
        model="claude-sonnet-4-6",
        input_tokens=1000,
        output_tokens=output,
        cost_nanousd=cost,
        stop_reason=stop,
        request_id=request,
    )


async def hourly_cost(db: Database) -> int:
    row = await db.fetchone("SELECT coalesce(sum(cost_nanousd), 0) FROM usage_hourly")
    assert row is not None
    return int(row[0])


async def test_an_opened_row_is_brought_up_to_date_not_doubled(db: Database) -> None:
    session = await SessionRepository(db).create(agent_id="main", model="m")
    ledger = UsageLedger(db)

    opened = await ledger.open(usage(session, output=1, cost=3_015_000, stop=None))
    assert opened.stop_reason == IN_PROGRESS
    # Spending so far is visible while the reply streams.
    assert (await ledger.totals_by_model())["claude-sonnet-4-6"].cost_nanousd == 3_015_000

    final = usage(session, output=400, cost=9_000_000, stop="end_turn")
    recorded = await ReplyRecorder(db).record(None, final, open_usage_id=opened.id)

    assert recorded.usage is not None
    assert recorded.usage.id == opened.id
    assert (recorded.usage.output_tokens, recorded.usage.stop_reason) == (400, "end_turn")
    rows = await db.fetchall("SELECT id, cost_nanousd FROM usage_records")
    assert [(row["id"], row["cost_nanousd"]) for row in rows] == [(opened.id, 9_000_000)]
    assert await hourly_cost(db) == 9_000_000  # the hourly sums followed the update


async def test_rows_left_open_are_marked_interrupted_with_their_figures(db: Database) -> None:
    session = await SessionRepository(db).create(agent_id="main", model="m")
    ledger = UsageLedger(db)
    await ledger.open(usage(session, output=1, cost=3_015_000, stop=None))
    finished = usage(session, output=5, cost=7, stop="end_turn", request="exchange-2")
    await ReplyRecorder(db).record(None, finished)

    assert await ledger.close_interrupted() == 1
    assert await ledger.close_interrupted() == 0

    rows = await db.fetchall("SELECT stop_reason, cost_nanousd FROM usage_records ORDER BY id")
    assert [tuple(row) for row in rows] == [(INTERRUPTED, 3_015_000), ("end_turn", 7)]


async def test_the_gateway_closes_rows_a_crash_left_open_when_it_starts(
    make_client, home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    # A database as a gateway that died mid-stream leaves it: one row still open.
    database = await Database.open(home.ensure().database)
    try:
        await apply_migrations(database)
        session = await SessionRepository(database).create(agent_id="main", model="m")
        await UsageLedger(database).open(usage(session, output=1, cost=42, stop=None))
    finally:
        await database.close()

    client = await make_client()

    rows = await client.server.app[appkeys.DATABASE].fetchall(
        "SELECT stop_reason, cost_nanousd FROM usage_records"
    )
    assert [tuple(row) for row in rows] == [(INTERRUPTED, 42)]
    assert "1 request(s) were still streaming when the gateway last stopped" in caplog.text


async def test_a_streaming_request_is_in_the_ledger_before_its_end(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(endless=True, text_chunks=["word "], delay_between_chunks=0.01, input_tokens=11)
    )
    async with chat_client.ws_connect("/gateway") as ws:
        await stream_started(ws, "s", "go on")
        await eventually(lambda: usage_rows(home))  # committed just after the message
        [streaming] = usage_rows(home)
        await request(ws, {"type": "chat.cancel", "id": "c", "requestId": "s"})
        end = (await until_end(ws, "s"))[-1]

    assert (streaming["stop_reason"], streaming["input_tokens"]) == (IN_PROGRESS, 11)
    assert streaming["cost_nanousd"] > 0
    [final] = usage_rows(home)
    assert final["id"] == streaming["id"]
    assert (final["stop_reason"], final["input_tokens"]) == ("cancelled", 11)
    assert final["output_tokens"] == end["usage"]["outputTokens"]
