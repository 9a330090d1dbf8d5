"""The database: one aiosqlite connection, pragmas, file mode, writes committed in groups."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiosqlite
import pytest
from database_helpers import INSERT_AUDIT, NOW, HeldWrite

from agentspace_gateway.storage import Database, StorageError, apply_migrations


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


def descriptors_on(path: Path) -> list[str]:
    target = str(path.resolve())
    fds = os.listdir("/proc/self/fd")
    return [fd for fd in fds if os.path.realpath(f"/proc/self/fd/{fd}") == target]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def inserting(*events: str) -> Callable[[aiosqlite.Connection], Awaitable[None]]:
    async def insert(connection: aiosqlite.Connection) -> None:
        for event in events:
            await connection.execute(INSERT_AUDIT, (event, NOW))

    return insert


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
        await database.write(inserting("written"))
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


async def test_the_connection_is_aiosqlite_and_only_one(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    try:
        await apply_migrations(database)
        await database.write(inserting("one"))
        # Every descriptor this process holds on the database file itself: one connection.
        assert len(descriptors_on(path)) == 1

        async def kind(connection: aiosqlite.Connection) -> type:
            return type(connection)

        assert await database.read(kind) is aiosqlite.Connection
    finally:
        await database.close()


async def test_a_write_commits_and_returns_its_result(db: Database) -> None:
    async def insert(connection: aiosqlite.Connection) -> int:
        cursor = await connection.execute(INSERT_AUDIT, ("kept", NOW))
        assert connection.in_transaction
        return cursor.lastrowid or 0

    assert await db.write(insert) > 0

    assert await audit_events(db) == ["kept"]


async def test_an_exception_rolls_the_write_back(db: Database) -> None:
    class Boom(Exception):
        pass

    async def write_then_fail(connection: aiosqlite.Connection) -> None:
        await inserting("first", "second")(connection)
        raise Boom

    with pytest.raises(Boom):
        await db.write(write_then_fail)

    assert await audit_events(db) == []
    await db.write(inserting("after"))
    assert await audit_events(db) == ["after"]


async def test_a_failing_statement_rolls_back_the_earlier_ones(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(inserting("first", ""))  # CHECK (event <> '')

    assert await audit_events(db) == []


async def test_foreign_keys_are_enforced(db: Database) -> None:
    async def orphan(connection: aiosqlite.Connection) -> None:
        await connection.execute(
            "INSERT INTO messages (session_id, role, content, created_at)"
            " VALUES ('no-such-session', 'user', 'hi', ?)",
            (NOW,),
        )

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.write(orphan)

    assert await db.fetchall("SELECT id FROM messages") == []


async def test_concurrent_writes_never_interleave(db: Database) -> None:
    async def insert(n: int) -> None:
        await db.write(inserting(f"a{n}", f"b{n}"))

    async def read() -> int:
        rows = await db.fetchall("SELECT event FROM audit_log")
        # A read sees whole writes only: never an "a" without its "b".
        assert len(rows) % 2 == 0
        return len(rows)

    await asyncio.gather(*(insert(n) for n in range(50)), *(read() for _ in range(10)))

    events = await audit_events(db)
    assert len(events) == 100
    # Each write's pair is adjacent: nothing else ran between its two statements.
    assert all(b == "b" + a[1:] for a, b in zip(events[::2], events[1::2], strict=True))


async def test_writes_that_queue_up_each_land_whole_in_the_order_asked(db: Database) -> None:
    async with HeldWrite(db):
        waiting = [asyncio.ensure_future(db.write(inserting(f"a{n}", f"b{n}"))) for n in range(20)]
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)

    expected = ["slow", *(event for n in range(20) for event in (f"a{n}", f"b{n}"))]
    assert await audit_events(db) == expected


async def wal_frames(db: Database) -> int:
    """Pages appended to the write-ahead log since it was last emptied: each commit appends
    every page it changed, so N commits of a row each append at least N."""
    row = await db.fetchone("PRAGMA wal_checkpoint(PASSIVE)")
    assert row is not None
    return int(row[1])


async def test_writes_that_queue_up_share_one_commit(db: Database) -> None:
    await db.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    assert await wal_frames(db) == 0
    async with HeldWrite(db):
        waiting = [asyncio.ensure_future(db.write(inserting(f"e{n}"))) for n in range(20)]
        await asyncio.sleep(0)
    await asyncio.gather(*waiting)

    assert len(await audit_events(db)) == 21
    # Twenty-one commits one by one would append at least twenty-one pages; the held write's
    # commit and one for the twenty queued behind it append a few.
    assert await wal_frames(db) < 10


async def test_a_write_is_committed_when_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    try:
        await apply_migrations(database)
        await database.write(inserting("durable"))
        # Another connection sees only what is committed.
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT event FROM audit_log").fetchall() == [("durable",)]
        finally:
            other.close()
    finally:
        await database.close()


async def test_a_write_that_fails_at_commit_is_rolled_back_and_raised(db: Database) -> None:
    async def orphan_checked_at_commit(connection: aiosqlite.Connection) -> None:
        await connection.execute(INSERT_AUDIT, ("with-the-orphan", NOW))
        await connection.execute("PRAGMA defer_foreign_keys = ON")
        await connection.execute(
            "INSERT INTO messages (session_id, role, content, created_at)"
            " VALUES ('no-such-session', 'user', 'hi', ?)",
            (NOW,),
        )

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.write(orphan_checked_at_commit)

    await db.write(inserting("next"))  # no transaction was left open by the failed COMMIT
    assert await audit_events(db) == ["next"]
    assert await db.fetchall("SELECT id FROM messages") == []


async def test_a_failing_write_among_queued_ones_is_rolled_back_alone(db: Database) -> None:
    async with HeldWrite(db):
        outcomes = asyncio.gather(
            db.write(inserting("good-1")),
            db.write(inserting("half", "")),  # the second statement breaks CHECK (event <> '')
            db.write(inserting("good-2")),
            return_exceptions=True,
        )
        await asyncio.sleep(0)

    good_1, half, good_2 = await outcomes
    assert good_1 is None
    assert good_2 is None
    assert isinstance(half, sqlite3.IntegrityError)
    assert await audit_events(db) == ["slow", "good-1", "good-2"]


async def test_a_read_never_sees_a_write_half_done(db: Database) -> None:
    async with HeldWrite(db):
        # Queued while the write's transaction is open: answered after its commit.
        read = asyncio.ensure_future(db.fetchall("SELECT event FROM audit_log"))
        await asyncio.sleep(0.05)
        assert not read.done()
    assert [row["event"] for row in await read] == ["slow"]


async def test_a_read_that_leaves_a_transaction_open_does_not_poison_the_next_write(
    db: Database,
) -> None:
    async def careless(connection: aiosqlite.Connection) -> None:
        await connection.execute("BEGIN")
        await connection.execute(INSERT_AUDIT, ("uncommitted", NOW))

    await db.read(careless)
    await db.write(inserting("committed"))

    assert await audit_events(db) == ["committed"]


async def test_fetchone_fetchall_and_read(db: Database) -> None:
    assert await db.fetchone("SELECT event FROM audit_log") is None
    assert await db.fetchall("SELECT event FROM audit_log") == []
    await db.write(inserting("one", "two"))

    row = await db.fetchone("SELECT event, created_at FROM audit_log WHERE event = ?", ("two",))
    assert row is not None
    assert (row["event"], row["created_at"]) == ("two", NOW)
    assert [r["event"] for r in await db.fetchall("SELECT event FROM audit_log")] == ["one", "two"]

    async def count(connection: aiosqlite.Connection) -> int:
        ((total,),) = await connection.execute_fetchall("SELECT count(*) FROM audit_log")
        return int(total)

    assert await db.read(count) == 2


async def test_close_waits_for_a_running_write(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    database = await Database.open(path)
    await apply_migrations(database)

    held = HeldWrite(database, "finished")
    await held.started.wait()
    closing = asyncio.ensure_future(database.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    held.release.set()
    await closing
    await held.done
    await database.close()  # a second close is harmless

    reopened = await Database.open(path)
    try:
        assert await audit_events(reopened) == ["finished"]
    finally:
        await reopened.close()


async def test_a_closed_database_says_so(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "agentspace.db")
    await database.close()

    with pytest.raises(StorageError, match="closed"):
        await database.fetchall("SELECT 1")


async def test_a_write_whose_caller_was_cancelled_still_lands_whole(db: Database) -> None:
    async with HeldWrite(db):
        abandoned = asyncio.ensure_future(db.write(inserting("abandoned-a", "abandoned-b")))
        await asyncio.sleep(0)
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
    await db.write(inserting("later"))  # queued behind it, so done after it

    # Once asked for, a write is done or failed as a whole, never half: here, done.
    assert await audit_events(db) == ["slow", "abandoned-a", "abandoned-b", "later"]


async def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "agentspace.db"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)

    with pytest.raises(
        StorageError, match=r"Cannot open the database: The database .*agentspace\.db is damaged"
    ):
        await Database.open(path)


async def test_an_operation_cut_short_by_a_cancellation_fails_alone(db: Database) -> None:
    async def cut_short(connection: aiosqlite.Connection) -> None:
        await connection.execute(INSERT_AUDIT, ("half", NOW))
        gone = asyncio.get_running_loop().create_future()
        gone.cancel()
        await gone  # a CancelledError of the operation's own, not the runner's

    async with HeldWrite(db):
        failing = asyncio.ensure_future(db.write(cut_short))
        innocent = asyncio.ensure_future(db.write(inserting("innocent")))
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await failing
    await innocent
    await db.write(inserting("next"))
    assert await audit_events(db) == ["slow", "innocent", "next"]


async def test_a_runner_cancelled_mid_write_leaves_no_transaction_open(db: Database) -> None:
    running: asyncio.Future[asyncio.Task[object]] = asyncio.get_running_loop().create_future()

    async def half_then_wait(connection: aiosqlite.Connection) -> None:
        await connection.execute(INSERT_AUDIT, ("half", NOW))
        task = asyncio.current_task()  # the task that runs the database's operations
        assert task is not None
        running.set_result(task)
        await asyncio.Event().wait()

    cut = asyncio.ensure_future(db.write(half_then_wait))
    queued = asyncio.ensure_future(db.write(inserting("queued")))
    runner = await running
    runner.cancel()  # as the loop's teardown would
    await asyncio.wait([runner])
    # Nobody is left waiting forever: both callers hear that the database went away.
    for abandoned in (cut, queued):
        with pytest.raises(StorageError, match="closed"):
            await abandoned

    await db.write(inserting("after"))  # not "cannot start a transaction within a transaction"
    assert await audit_events(db) == ["after"]


async def test_a_write_that_need_not_survive_a_crash_lands_and_leaves_full_sync(
    db: Database,
) -> None:
    async def insert(event: str) -> Callable[[aiosqlite.Connection], Awaitable[None]]:
        async def run(connection: aiosqlite.Connection) -> None:
            await connection.execute(INSERT_AUDIT, (event, NOW))

        return run

    await db.write(await insert("reservation"), durable=False)
    assert await audit_events(db) == ["reservation"]
    # The next durable write, and everything after, is flushed as before.
    assert await pragma(db, "synchronous") == 2
    # Queued together with a durable write, a non-durable one is flushed with it.
    await asyncio.gather(
        db.write(await insert("light"), durable=False), db.write(await insert("ledger"))
    )
    assert await audit_events(db) == ["reservation", "light", "ledger"]
    assert await pragma(db, "synchronous") == 2


FSYNC_PROBE = """
import asyncio, sys
from pathlib import Path
from agentspace_gateway.storage import Database

async def main(path, mode):
    db = await Database.open(Path(path))
    await db.write(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
    for i in range(5):
        async def insert(c, i=i):
            await c.execute("INSERT INTO t VALUES (?)", (i,))
        if mode == "light-one-trip":
            await db.write_in_one_trip(lambda raw, i=i: raw.execute(
                "INSERT INTO t VALUES (?)", (i,)), durable=False)
        else:
            await db.write(insert, durable=mode == "durable")
    assert [row[0] for row in await db.fetchall("SELECT x FROM t")] == list(range(5))
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def fsyncs_of_five_writes(tmp_path: Path, mode: str) -> int:
    trace = tmp_path / f"{mode}.strace"
    strace = ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace)]
    subprocess.run(
        [*strace, sys.executable, "-c", FSYNC_PROBE, str(tmp_path / f"{mode}.db"), mode],
        check=True,
        timeout=60,
    )
    return trace.read_text().count("sync(")


@pytest.mark.parametrize("light", ["light", "light-one-trip"])
def test_a_write_that_need_not_survive_a_crash_costs_no_fsync(tmp_path: Path, light: str) -> None:
    # The same process and the same five writes: each durable one flushes, no light one does,
    # whether it runs statement by statement or in one trip (as a budget reservation does).
    assert fsyncs_of_five_writes(tmp_path, "durable") - fsyncs_of_five_writes(tmp_path, light) >= 5
