"""Operations run whole in one trip to the database thread keep every promise of a write:
queued ones share a commit, a failing one is rolled back alone, a read sees only commits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiosqlite
import pytest
from database_helpers import INSERT_AUDIT, NOW, HeldWrite

from agentspace_gateway.storage import Database, apply_migrations


def inserting(*events: str) -> Callable[[sqlite3.Connection], int]:
    def insert(raw: sqlite3.Connection) -> int:
        for event in events:
            raw.execute(INSERT_AUDIT, (event, NOW))
        return len(events)

    return insert


async def audit_events(db: Database) -> list[str]:
    return [row["event"] for row in await db.fetchall("SELECT event FROM audit_log ORDER BY id")]


async def test_a_write_in_one_trip_commits_and_returns_its_result(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    try:
        await apply_migrations(database)
        assert await database.write_in_one_trip(inserting("a", "b")) == 2
        other = sqlite3.connect(path)  # another connection sees only what is committed
        try:
            assert other.execute("SELECT event FROM audit_log").fetchall() == [("a",), ("b",)]
        finally:
            other.close()
    finally:
        await database.close()


async def test_a_failing_write_in_one_trip_is_rolled_back_whole(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        await db.write_in_one_trip(inserting("half", ""))  # the second breaks event <> ''
    assert await db.write_in_one_trip(inserting("next")) == 1
    assert await audit_events(db) == ["next"]


async def test_queued_writes_in_one_trip_fail_alone_and_land_in_order(db: Database) -> None:
    async with HeldWrite(db):
        outcomes = asyncio.gather(
            db.write_in_one_trip(inserting("good-1")),
            db.write_in_one_trip(inserting("half", "")),
            db.write_in_one_trip(inserting("good-2")),
            return_exceptions=True,
        )
        await asyncio.sleep(0)

    good_1, half, good_2 = await outcomes
    assert (good_1, good_2) == (1, 1)
    assert isinstance(half, sqlite3.IntegrityError)
    assert await audit_events(db) == ["slow", "good-1", "good-2"]


async def test_both_kinds_of_write_queued_together_fail_alone(db: Database) -> None:
    async def usual(connection: aiosqlite.Connection) -> str:
        await connection.execute(INSERT_AUDIT, ("usual", NOW))
        return "usual"

    async def usual_failing(connection: aiosqlite.Connection) -> None:
        await connection.execute(INSERT_AUDIT, ("usual-half", NOW))
        await connection.execute(INSERT_AUDIT, ("", NOW))

    async with HeldWrite(db):
        outcomes = asyncio.gather(
            db.write(usual),
            db.write_in_one_trip(inserting("one-trip")),
            db.write(usual_failing),
            db.write_in_one_trip(inserting("trip-half", "")),
            db.write_in_one_trip(inserting("last")),
            return_exceptions=True,
        )
        await asyncio.sleep(0)

    results = await outcomes
    assert results[0] == "usual"
    assert results[1] == 1
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert isinstance(results[3], sqlite3.IntegrityError)
    assert results[4] == 1
    assert await audit_events(db) == ["slow", "usual", "one-trip", "last"]


async def test_a_read_in_one_trip_sees_commits_and_raises_its_own_error(db: Database) -> None:
    await db.write_in_one_trip(inserting("seen"))

    def events(raw: sqlite3.Connection) -> list[str]:
        return [row["event"] for row in raw.execute("SELECT event FROM audit_log")]

    def broken(raw: sqlite3.Connection) -> None:
        raw.execute("SELECT * FROM no_such_table")

    assert await db.read_in_one_trip(events) == ["seen"]
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        await db.read_in_one_trip(broken)
    assert await db.read_in_one_trip(events) == ["seen"]


async def test_a_read_in_one_trip_leaves_no_transaction_for_the_next_write(db: Database) -> None:
    def opens_one(raw: sqlite3.Connection) -> None:
        raw.execute("BEGIN")
        raw.execute("SELECT count(*) FROM audit_log").fetchall()

    await db.read_in_one_trip(opens_one)
    assert await db.write_in_one_trip(inserting("after")) == 1
    assert await audit_events(db) == ["after"]
