"""The hourly usage sums: reports over every session read them, and they match the ledger."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from agentspace_gateway.clock import format_utc
from agentspace_gateway.storage import (
    Database,
    ModelUsage,
    SessionRepository,
    UsageLedger,
    apply_migrations,
    available_migrations,
    migrator,
)
from agentspace_gateway.storage.usage_hours import split

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5")


async def insert_rows(
    connection: aiosqlite.Connection,
    session_id: str,
    count: int,
    seed: int,
    *,
    before_0004: bool = False,
) -> None:
    """Rows spread over about 12 hours, some on the very hour, some unpriced, some with
    one-hour cache writes or estimated output (columns only 0004 adds)."""
    chance = random.Random(seed)
    for index in range(count):
        moment = START + timedelta(minutes=chance.choice((0, 60, 90, 7.5)) * chance.randrange(8))
        moment += timedelta(milliseconds=chance.choice((0, 0, 1, 59_999)))
        cache_writes = chance.randrange(50)
        values = {
            "session_id": session_id,
            "model": chance.choice(MODELS),
            "input_tokens": chance.randrange(1000),
            "output_tokens": chance.randrange(1000),
            "cache_creation_input_tokens": cache_writes,
            "cache_read_input_tokens": chance.randrange(50),
            "cost_nanousd": chance.randrange(10**9),
            "created_at": format_utc(moment),
            "priced": 0 if chance.random() < 0.1 else 1,
            "request_id": f"r{seed}-{index}",
        }
        if not before_0004:
            values["cache_creation_1h_input_tokens"] = chance.randrange(cache_writes + 1)
            values["output_estimated"] = int(chance.random() < 0.2)
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        await connection.execute(
            f"INSERT INTO usage_records ({columns}) VALUES ({marks})",  # noqa: S608 - constants
            tuple(values.values()),
        )


async def ledger_sums(db: Database, since: str | None, until: str | None) -> dict[str, ModelUsage]:
    """The same report the slow way: every ledger row in range, summed in Python."""
    rows = await db.fetchall("SELECT * FROM usage_records")
    sums: dict[str, list[int]] = {}
    for row in rows:
        if (since is not None and row["created_at"] < since) or (
            until is not None and row["created_at"] >= until
        ):
            continue
        model = sums.setdefault(row["model"], [0] * 9)
        for index, name in enumerate(
            (
                "input_tokens",
                "output_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "cost_nanousd",
            )
        ):
            model[index] += row[name]
        model[5] += 1
        model[6] += row["priced"] == 0
        model[7] += row["cache_creation_1h_input_tokens"]
        model[8] += row["output_estimated"]
    return {
        name: ModelUsage(
            name,
            *values[:6],  # type: ignore[arg-type]
            priced=values[6] == 0,
            cache_creation_1h_input_tokens=values[7],
            estimated_count=values[8],
        )
        for name, values in sorted(sums.items())
    }


@pytest.fixture
async def seeded(db: Database) -> str:
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await db.write(lambda connection: insert_rows(connection, session.id, 400, seed=1))
    return session.id


def at(hours: float) -> str:
    return format_utc(START + timedelta(hours=hours))


RANGES = [
    (None, None),
    (at(1), None),
    (None, at(5)),
    (at(1), at(5)),  # whole hours only
    (at(1.25), at(5.5)),  # partial hours at both ends
    (at(2.1), at(2.2)),  # inside one hour
    (at(2.5), at(3.5)),  # across one boundary, no whole hour
    (at(3), at(3)),  # empty
    (at(5), at(1)),  # backwards: empty
    ("2026-11-28", "2026-11-29"),  # a caller's own short form: read from the ledger
]


@pytest.mark.parametrize(("since", "until"), RANGES)
async def test_every_range_matches_the_ledger(
    db: Database, seeded: str, since: str | None, until: str | None
) -> None:
    report = await UsageLedger(db).totals_by_model(since=since, until=until)

    assert report == await ledger_sums(db, since, until)


async def test_the_sums_follow_rows_corrected_or_removed(db: Database, seeded: str) -> None:
    async def correct(connection: aiosqlite.Connection) -> None:
        await connection.execute(
            "UPDATE usage_records SET created_at = ?, model = 'other', priced = 0"
            " WHERE id IN (SELECT id FROM usage_records ORDER BY id LIMIT 30)",
            (at(9.5),),
        )
        await connection.execute(
            "UPDATE usage_records SET output_estimated = 1 - output_estimated,"
            " cache_creation_1h_input_tokens = cache_creation_input_tokens"
            " WHERE id % 5 = 0"
        )
        await connection.execute("DELETE FROM usage_records WHERE id % 7 = 0")

    await db.write(correct)

    for since, until in RANGES[:5]:
        report = await UsageLedger(db).totals_by_model(since=since, until=until)
        assert report == await ledger_sums(db, since, until)
    empty = await db.fetchall("SELECT * FROM usage_hourly WHERE request_count = 0")
    assert empty == []


async def test_rows_from_before_the_migration_are_summed_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = available_migrations()
    monkeypatch.setattr(
        migrator, "available_migrations", lambda: [m for m in shipped if m.name < "0003"]
    )
    db = await Database.open(tmp_path / "agentspace.db")
    try:
        await apply_migrations(db)
        session = await SessionRepository(db).create(agent_id="main", model="m")
        await db.write(
            lambda connection: insert_rows(connection, session.id, 200, seed=2, before_0004=True)
        )
        monkeypatch.setattr(migrator, "available_migrations", lambda: shipped)

        assert await apply_migrations(db) == [m.name for m in shipped if m.name >= "0003"]

        for since, until in RANGES[:5]:
            report = await UsageLedger(db).totals_by_model(since=since, until=until)
            assert report == await ledger_sums(db, since, until)
    finally:
        await db.close()


def test_a_range_is_split_into_whole_hours_and_edges() -> None:
    parts = split("2026-11-28T09:15:00.000Z", "2026-11-28T12:30:00.000Z")
    assert parts is not None
    assert (parts.first_hour, parts.end_hour) == ("2026-11-28T10", "2026-11-28T12")
    assert parts.edges == [
        ("2026-11-28T09:15:00.000Z", "2026-11-28T10:00:00.000Z"),
        ("2026-11-28T12:00:00.000Z", "2026-11-28T12:30:00.000Z"),
    ]
    on_the_hour = split("2026-11-28T09:00:00.000Z", "2026-11-28T12:00:00.000Z")
    assert on_the_hour is not None
    assert on_the_hour.edges == []
    end_of_year = split("2026-12-31T23:15:00.000Z", None)
    assert end_of_year is not None
    assert end_of_year.first_hour == "2027-01-01T00"
    assert split("9999-12-31T23:15:00.000Z", None) is None
    assert split("2026-11-28T09:15:00.000Z", "2026-11-28T09:45:00.000Z") is None
