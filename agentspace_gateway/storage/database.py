"""The SQLite database of this process: a writer thread that commits in groups, and a reader.

Every write is a plain function of a ``sqlite3.Connection``, run whole on the writer's own
thread inside a transaction: one trip from the event loop per write, however many
statements it holds. Writes that queue up while a commit is being flushed to disk are
committed together, each inside its own savepoint: a failing write is rolled back alone,
and the others wait for the one fsync they share. Reads run on a second connection and
thread, so they never wait behind a commit (WAL lets readers and the writer work at once).

Why not a coroutine per statement (aiosqlite): each statement was a trip to a thread and
back, and on a busy event loop every trip costs whole loop iterations; with a single lock
held across each transaction, 50 chats at once queued behind 100 separate fsyncs
(docs/performance.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from agentspace_gateway.storage.errors import StorageError

log = logging.getLogger(__name__)

# STRICT tables and RETURNING both arrived by 3.37.
MIN_SQLITE_VERSION = (3, 37, 0)
PRIVATE_FILE_MODE = 0o600
_SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")
# Writes committed together at most: bounds how long the first one waits for the last.
MAX_GROUP = 64

Params = Iterable[Any]
T = TypeVar("T")


@attrs.frozen
class _Job:
    function: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    # A write joins a group commit; anything else runs alone, outside any transaction.
    write: bool


@attrs.define
class CommitStats:
    """How the writer has grouped writes so far (for tests and benchmarks)."""

    writes: int = 0
    commits: int = 0
    largest_group: int = 0


class _Stop:
    """Queued last by ``stop``: everything before it is done, then the thread ends."""


_STOP = _Stop()


class _Worker:
    """One thread owning one sqlite3 connection, running the jobs it is given in order."""

    def __init__(self, name: str, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.stats = CommitStats()
        self._jobs: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, function: Callable[[sqlite3.Connection], T], *, write: bool
    ) -> asyncio.Future[T]:
        if self._stopping:
            raise StorageError("The database is closed; nothing more can be read or written.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(function, future, write))
        return future

    async def stop(self) -> None:
        """Finish every job already queued, close the connection, end the thread."""
        if not self._stopping:
            self._stopping = True
            self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        next_job: _Job | _Stop | None = None
        while True:
            job = next_job if next_job is not None else self._jobs.get()
            next_job = None
            if isinstance(job, _Stop):
                break
            if not job.write:
                _deliver(job, *_call(job.function, self.connection))
                continue
            # Everything queued meanwhile (while the last commit was flushed) goes together.
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    following = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if isinstance(following, _Stop) or not following.write:
                    next_job = following
                    break
                group.append(following)
            try:
                outcomes = self._commit(group)
            except Exception as error:  # a savepoint or rollback itself failed
                _rollback_quietly(self.connection)
                outcomes = [(None, error)] * len(group)
            for member, (result, failure) in zip(group, outcomes, strict=True):
                _deliver(member, result, failure)
        self.connection.close()

    def _commit(self, group: list[_Job]) -> list[tuple[Any, BaseException | None]]:
        """Run the group in one transaction, each write in its own savepoint; commit once."""
        connection = self.connection
        outcomes: list[tuple[Any, BaseException | None]] = []
        open_since: int | None = None  # the first write of the open transaction

        def lose(error: BaseException) -> None:
            # The transaction is gone, and with it every write made in it.
            assert open_since is not None
            for index in range(open_since, len(outcomes)):
                outcomes[index] = (None, outcomes[index][1] or error)

        for job in group:
            if open_since is not None and not connection.in_transaction:
                # SQLite rolled back by itself (disk full, I/O error) on the last write.
                last_error = outcomes[-1][1]
                assert last_error is not None
                lose(last_error)
                open_since = None
            if open_since is None:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as refused:
                    outcomes.append((None, refused))
                    continue
                open_since = len(outcomes)
            connection.execute("SAVEPOINT write")
            result, failure = _call(job.function, connection)
            if connection.in_transaction:
                if failure is not None:
                    connection.execute("ROLLBACK TO write")
                connection.execute("RELEASE write")
            outcomes.append((result, failure))
        if open_since is not None:
            if not connection.in_transaction:
                last_error = outcomes[-1][1]
                assert last_error is not None
                lose(last_error)
            else:
                try:
                    connection.execute("COMMIT")
                except sqlite3.Error as unflushed:
                    _rollback_quietly(connection)
                    lose(unflushed)
        self.stats.writes += len(group)
        self.stats.commits += 1
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        return outcomes


def _call(
    function: Callable[[sqlite3.Connection], Any], connection: sqlite3.Connection
) -> tuple[Any, BaseException | None]:
    try:
        return function(connection), None
    except Exception as error:  # handed to the awaiting coroutine, raised there
        return None, error


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():  # the caller was cancelled; what it asked for is done anyway
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    # A closed loop (RuntimeError) has nobody left to tell.
    with contextlib.suppress(RuntimeError):
        job.future.get_loop().call_soon_threadsafe(settle)


def _rollback_quietly(connection: sqlite3.Connection) -> None:
    try:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
    except sqlite3.Error:
        log.warning("ROLLBACK failed", exc_info=True)


class Database:
    """The writer and the reader of one database file.

    ``write(fn)`` runs ``fn(connection)`` in a transaction on the writer thread and returns
    its result once it is committed (a write whose caller was cancelled still lands whole).
    ``fetchone``/``fetchall``/``read`` run on the reader and see what is committed.
    ``exclusive(fn)`` runs on the writer outside any transaction, for the migrator, which
    runs ``executescript`` with its own ``BEGIN``/``COMMIT``.
    """

    def __init__(self, writer: _Worker, reader: _Worker, path: Path) -> None:
        self._writer = writer
        self._reader = reader
        self._path = path
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_ms: int = 5000) -> Database:
        """Open (creating if missing, mode 0600) the database at ``path``. Does not migrate."""
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StorageError(
                f"agentspace-gateway needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or "
                f"newer, but this Python uses SQLite {sqlite3.sqlite_version}. "
                "Run agentspace-gateway with a Python built against a newer SQLite."
            )
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise TypeError(f"busy_timeout_ms must be an int, got {busy_timeout_ms!r}")
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        _create_private_file(path)
        writer = await asyncio.to_thread(_connect, path, busy_timeout_ms, read_only=False)
        try:
            reader = await asyncio.to_thread(_connect, path, busy_timeout_ms, read_only=True)
        except BaseException:
            writer.close()
            raise
        _restrict_permissions(path)
        return cls(_Worker("sqlite-writer", writer), _Worker("sqlite-reader", reader), path)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def commit_stats(self) -> CommitStats:
        return self._writer.stats

    async def close(self) -> None:
        """Close once every write and read already asked for is done. Idempotent."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        await asyncio.gather(self._writer.stop(), self._reader.stop())

    async def write(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` in a transaction, committed (maybe with others) on return.

        An exception from ``function`` rolls back what it did, and only that, and is raised
        here; so is a failure to commit.
        """
        return await self._writer.submit(function, write=True)

    async def exclusive(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` on the writer, alone and outside any transaction."""
        return await self._writer.submit(function, write=False)

    async def read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` on the reader: several queries in one trip."""
        return await self._reader.submit(function, write=False)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        def one(connection: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = connection.execute(sql, tuple(params)).fetchone()
            return row

        return await self.read(one)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        def everything(connection: sqlite3.Connection) -> list[sqlite3.Row]:
            return connection.execute(sql, tuple(params)).fetchall()

        return await self.read(everything)


def _connect(path: Path, busy_timeout_ms: int, *, read_only: bool) -> sqlite3.Connection:
    # Made on a worker thread and handed to another: each is only ever used by one thread
    # at a time, which is what check_same_thread=False asks of us.
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise StorageError(f"Cannot open the database {path}: {error}.") from error
    try:
        connection.row_factory = sqlite3.Row
        _configure(connection, path, busy_timeout_ms)
        if read_only:
            connection.execute("PRAGMA query_only = ON")
    except BaseException as error:
        connection.close()
        if isinstance(error, sqlite3.DatabaseError):
            raise StorageError(
                f"Cannot open the database {path}: {error}. If another program holds it, "
                "stop that program; if the file is damaged, move it aside and start again."
            ) from error
        raise
    return connection


def _configure(connection: sqlite3.Connection, path: Path, busy_timeout_ms: int) -> None:
    expected: dict[str, Any] = {
        # The audit log and the cost ledger must survive a crash or a power cut.
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": busy_timeout_ms,
        "synchronous": 2,  # FULL
    }
    connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA synchronous = FULL")
    for pragma, wanted in expected.items():
        row = connection.execute(f"PRAGMA {pragma}").fetchone()
        actual = None if row is None else row[0]
        if actual != wanted:
            raise StorageError(
                f"Could not set PRAGMA {pragma} to {wanted!r} on {path} (it is {actual!r}). "
                "Keep AGENTSPACE_HOME on a local filesystem that supports SQLite WAL mode."
            )


def _create_private_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _restrict_permissions(path: Path) -> None:
    # Conversations, the audit trail and spending are nobody else's business; SQLite gives
    # the -wal/-shm files the main file's mode, but an older file may predate us.
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDE_FILE_SUFFIXES)):
        try:
            mode = candidate.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & ~PRIVATE_FILE_MODE:
            candidate.chmod(PRIVATE_FILE_MODE)
