"""The shared connection: pragmas, file mode, transactions and the lock."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentspace_gateway.storage import Database, StorageError, apply_migrations

NOW = "2026-11-28T09:00:00.000Z"
INSERT_AUDIT = "INSERT INTO audit_log (event, created_at) VALUES (?, ?)"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With umask 0 nothing hides a world-readable creation mode.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def pragma(db: Database, name: str) -> object:
    row = await db.fetchone(f"PRAGMA {name}")
    assert row is not None
    return row[0]


async def audit_events(db: Database) -> list[str]:
    return [row["event"] for row in await db.fetchall("SELECT event FROM audit_log ORDER BY id")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_pragmas_are_in_effect(db: Database) -> None:
    assert await pragma(db, "journal_mode") == "wal"
    assert await pragma(db, "foreign_keys") == 1
    assert await pragma(db, "synchronous") == 2  # FULL
    assert await pragma(db, "busy_timeout") == 5000


async def test_busy_timeout_is_configurable(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "agentspace.db", busy_timeout_ms=1234)
    try:
        assert await pragma(database, "busy_timeout") == 1234
    finally:
        await database.close()


async def test_a_negative_busy_timeout_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="busy_timeout_ms must be >= 0"):
        await Database.open(tmp_path / "agentspace.db", busy_timeout_ms=-1)


async def test_opening_does_not_migrate(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "agentspace.db")
    try:
        assert database.path == tmp_path / "agentspace.db"
        assert await database.fetchall("SELECT name FROM sqlite_master") == []
    finally:
        await database.close()


@pytest.mark.usefixtures("permissive_umask")
async def test_the_database_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    try:
        await apply_migrations(database)
        async with database.transaction() as connection:
            await connection.execute(INSERT_AUDIT, ("written", NOW))
        assert mode(path) == 0o600
        assert mode(path.with_name("agentspace.db-wal")) == 0o600
        assert mode(path.with_name("agentspace.db-shm")) == 0o600
    finally:
        await database.close()


async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)

    database = await Database.open(path)
    await database.close()

    assert mode(path) == 0o600


async def test_a_transaction_commits(db: Database) -> None:
    async with db.transaction() as connection:
        await connection.execute(INSERT_AUDIT, ("kept", NOW))

    assert await audit_events(db) == ["kept"]


async def test_an_exception_rolls_the_transaction_back(db: Database) -> None:
    class Boom(Exception):
        pass

    async def write_then_fail() -> None:
        async with db.transaction() as connection:
            await connection.execute(INSERT_AUDIT, ("first", NOW))
            await connection.execute(INSERT_AUDIT, ("second", NOW))
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()

    assert await audit_events(db) == []
    async with db.transaction() as connection:
        assert connection.in_transaction
        await connection.execute(INSERT_AUDIT, ("after", NOW))
    assert await audit_events(db) == ["after"]


async def test_a_failing_statement_rolls_back_the_earlier_ones(db: Database) -> None:
    async def write_good_then_bad() -> None:
        async with db.transaction() as connection:
            await connection.execute(INSERT_AUDIT, ("first", NOW))
            await connection.execute(INSERT_AUDIT, ("", NOW))  # CHECK (event <> '')

    with pytest.raises(sqlite3.IntegrityError):
        await write_good_then_bad()

    assert await audit_events(db) == []


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with db.transaction() as connection:
            await connection.execute(
                "INSERT INTO messages (session_id, role, content, created_at)"
                " VALUES ('no-such-session', 'user', 'hi', ?)",
                (NOW,),
            )

    assert await db.fetchall("SELECT id FROM messages") == []


async def test_concurrent_transactions_never_interleave(db: Database) -> None:
    inside = 0
    most_inside = 0

    async def insert(n: int) -> None:
        nonlocal inside, most_inside
        async with db.transaction() as connection:
            inside += 1
            most_inside = max(most_inside, inside)
            await connection.execute(INSERT_AUDIT, (f"a{n}", NOW))
            await asyncio.sleep(0)  # give every other coroutine the chance to cut in
            await connection.execute(INSERT_AUDIT, (f"b{n}", NOW))
            inside -= 1

    async def read() -> int:
        return len(await db.fetchall("SELECT id FROM audit_log"))

    await asyncio.gather(*(insert(n) for n in range(50)), *(read() for _ in range(10)))

    assert most_inside == 1
    events = await audit_events(db)
    assert len(events) == 100
    # Each transaction's pair is adjacent: nothing else ran between its two statements.
    assert all(b == "b" + a[1:] for a, b in zip(events[::2], events[1::2], strict=True))


async def test_fetchone_and_fetchall(db: Database) -> None:
    assert await db.fetchone("SELECT event FROM audit_log") is None
    assert await db.fetchall("SELECT event FROM audit_log") == []
    async with db.transaction() as connection:
        await connection.execute(INSERT_AUDIT, ("one", NOW))
        await connection.execute(INSERT_AUDIT, ("two", NOW))

    row = await db.fetchone("SELECT event, created_at FROM audit_log WHERE event = ?", ("two",))
    assert row is not None
    assert (row["event"], row["created_at"]) == ("two", NOW)
    assert [r["event"] for r in await db.fetchall("SELECT event FROM audit_log")] == ["one", "two"]


async def test_close_waits_for_a_running_transaction(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    await apply_migrations(database)
    started = asyncio.Event()

    async def slow_write() -> None:
        async with database.transaction() as connection:
            started.set()
            await asyncio.sleep(0.05)
            await connection.execute(INSERT_AUDIT, ("finished", NOW))

    writer = asyncio.create_task(slow_write())
    await started.wait()
    await database.close()
    await writer
    await database.close()  # a second close is harmless

    reopened = await Database.open(path)
    try:
        assert await audit_events(reopened) == ["finished"]
    finally:
        await reopened.close()


async def test_using_the_database_inside_its_own_transaction_raises(db: Database) -> None:
    async def nested() -> None:
        async with db.transaction():
            await db.fetchall("SELECT id FROM audit_log")

    with pytest.raises(RuntimeError, match="already holds the database"):
        await asyncio.wait_for(nested(), timeout=5)


async def test_a_cancelled_transaction_is_rolled_back(db: Database) -> None:
    inside = asyncio.Event()

    async def write_then_wait() -> None:
        async with db.transaction() as connection:
            await connection.execute(INSERT_AUDIT, ("abandoned", NOW))
            inside.set()
            await asyncio.sleep(60)

    writer = asyncio.create_task(write_then_wait())
    await inside.wait()
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer

    assert await audit_events(db) == []
    async with db.transaction() as connection:
        await connection.execute(INSERT_AUDIT, ("next", NOW))
    assert await audit_events(db) == ["next"]


async def test_a_transaction_cancelled_while_beginning_leaves_none_open(db: Database) -> None:
    for _ in range(20):
        task = asyncio.create_task(_begin_and_write(db))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async with db.transaction() as connection:
        await connection.execute(INSERT_AUDIT, ("after", NOW))
    assert "after" in await audit_events(db)


async def _begin_and_write(db: Database) -> None:
    async with db.transaction() as connection:
        await connection.execute(INSERT_AUDIT, ("maybe", NOW))


async def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)

    with pytest.raises(StorageError, match=r"Cannot open the database .*agentspace\.db"):
        await Database.open(path)
