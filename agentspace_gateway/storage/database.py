"""The SQLite database of this process: one aiosqlite connection, and the queue in front of it.

Every database operation is an async function of that connection, queued and run whole, in
order, by one task: a read never sees a write half done, and a write never has another
coroutine's statements inside its transaction. Writes that queue up while a commit is being
flushed to disk are committed together, each inside its own savepoint: a failing write is
rolled back alone, and the others share one fsync (with ``synchronous=FULL``, the fsync is
what a write costs). Measured against one transaction per write, with 50 writers at once
or spread as 50 chats write, grouping is what keeps a queued write's wait short, most of all
when the disk is slow (docs/performance.md, "Group commit, re-measured"). A caller that is
cancelled stops waiting, but what it asked for still runs to its end: a transaction is never
cut in half. An operation written as a plain function of the sqlite3 connection
(``write_in_one_trip``, ``read_in_one_trip``) runs whole in one trip to the connection's
thread rather than one trip a statement (``one_trip``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import attrs

from agentspace_gateway.storage import group_commit, one_trip
from agentspace_gateway.storage.errors import StorageError
from agentspace_gateway.storage.failures import PATH_NOTE, storage_problem
from agentspace_gateway.storage.group_commit import Outcome

log = logging.getLogger(__name__)

# STRICT tables and RETURNING both arrived by 3.37.
MIN_SQLITE_VERSION = (3, 37, 0)
PRIVATE_FILE_MODE = 0o600
_SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")
# Writes committed together at most: bounds how long the first one waits for the last.
MAX_GROUP = 64

Params = Iterable[Any]
T = TypeVar("T")
# An operation awaits only the connection it is given: anything else it awaited would hold
# up every other read and write of the process.
Operation = Callable[[aiosqlite.Connection], Awaitable[T]]
_Kind = Literal["write", "read", "exclusive"]


@attrs.frozen
class _Job:
    operation: Any  # an Operation, or a one_trip.SyncOperation when in_one_trip
    future: asyncio.Future[Any]
    kind: _Kind
    durable: bool = True
    in_one_trip: bool = False


class Database:
    """The one connection of this process to its database file.

    ``write(op)`` runs ``op(connection)`` in a transaction and returns its result once it is
    committed (maybe together with other writes). ``read(op)``, ``fetchone`` and
    ``fetchall`` run outside any transaction and see everything committed before them.
    ``exclusive(op)`` runs alone outside any transaction, for the migrator, which runs
    ``executescript`` with its own ``BEGIN``/``COMMIT``.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection = connection
        self._path = path
        self._jobs: collections.deque[_Job] = collections.deque()
        self._runner: asyncio.Task[None] | None = None
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
        try:
            _create_private_file(path)
            # Autocommit: transactions are begun and ended here, explicitly.
            connection = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as error:
            raise _cannot_open(path, error) from error
        try:
            connection.row_factory = sqlite3.Row
            await _configure(connection, path, busy_timeout_ms)
            _restrict_permissions(path)
        except BaseException as error:
            # An unclosed aiosqlite connection keeps its (non-daemon) thread alive.
            await connection.close()
            if isinstance(error, sqlite3.DatabaseError | OSError):
                raise _cannot_open(path, error) from error
            raise
        return cls(connection, path)

    @property
    def path(self) -> Path:
        return self._path

    async def close(self) -> None:
        """Close once every operation already asked for is done. Idempotent."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self._runner is not None:
            # Not the runner's own outcome: each job's failure went to its caller.
            await asyncio.wait([self._runner])
        await self._connection.close()

    async def write(self, operation: Operation[T], *, durable: bool = True) -> T:
        """``operation(connection)`` in a transaction, committed (maybe with others) on return.

        An exception from ``operation`` rolls back what it did, and only that, and is raised
        here; so is a failure to commit.

        ``durable=False`` is for rows a crash may lose because the next start rebuilds them
        (budget reservations: every open one is released at startup). A group of such writes
        is committed without the fsync (``synchronous=NORMAL``: in WAL mode the commit is
        still atomic and ordered; only the flush waits for the next durable commit or
        checkpoint). A group with any durable write is flushed as always.
        """
        return await self._submit(operation, "write", durable=durable)

    async def write_in_one_trip(
        self, operation: one_trip.SyncOperation[T], *, durable: bool = True
    ) -> T:
        """``write``, for an operation on the sqlite3 connection run on its thread in one
        trip; with writes of its kind queued beside it, BEGIN to COMMIT is one trip."""
        return await self._submit(operation, "write", durable=durable, in_one_trip=True)

    async def read_in_one_trip(self, operation: one_trip.SyncOperation[T]) -> T:
        """``read``, for an operation on the sqlite3 connection run on its thread in one trip."""
        return await self._submit(operation, "read", in_one_trip=True)

    async def read(self, operation: Operation[T]) -> T:
        """``operation(connection)`` outside any transaction: several queries in one turn."""
        return await self._submit(operation, "read")

    async def exclusive(self, operation: Operation[T]) -> T:
        """``operation(connection)`` alone, outside any transaction; it may begin its own."""
        return await self._submit(operation, "exclusive")

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async def everything(connection: aiosqlite.Connection) -> list[sqlite3.Row]:
            return list(await connection.execute_fetchall(sql, tuple(params)))

        return await self.read(everything)

    def _submit(
        self,
        operation: Operation[T] | one_trip.SyncOperation[T],
        kind: _Kind,
        *,
        durable: bool = True,
        in_one_trip: bool = False,
    ) -> asyncio.Future[T]:
        if self._closing is not None:
            raise StorageError("The database is closed; nothing more can be read or written.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(operation, future, kind, durable, in_one_trip))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="sqlite-runner")
        return future

    async def _run(self) -> None:
        """Run every queued job, in order, until the queue is empty."""
        group: list[_Job] = []
        try:
            while self._jobs:
                group = [self._jobs.popleft()]
                if group[0].kind != "write":
                    _settle(group[0], *await self._alone(group[0]), path=self._path)
                    continue
                # Everything queued meanwhile (while the last commit was flushed) goes together.
                while self._jobs and self._jobs[0].kind == "write" and len(group) < MAX_GROUP:
                    group.append(self._jobs.popleft())
                for member, outcome in zip(group, await self._commit(group), strict=True):
                    _settle(member, *outcome, path=self._path)
        finally:
            # Only if this task itself was cancelled (the loop is closing) is anything left
            # unsettled; nobody must wait for it forever, and no transaction stays open.
            for job in (*group, *self._jobs):
                _settle(job, None, StorageError("The database was closed."))
            self._jobs.clear()
            if self._connection.in_transaction:
                await _rollback_quietly(self._connection)

    async def _alone(self, job: _Job) -> Outcome:
        connection = self._connection
        if job.in_one_trip:
            raw = one_trip.raw_connection(connection)
            outcome, failure = await self._trip(lambda: one_trip.read(raw, job.operation))
            return (None, failure) if failure is not None else outcome
        if connection.in_transaction:  # left by an operation cut short: never inherited
            await _rollback_quietly(connection)
        outcome = await _call(job.operation, connection)
        if job.kind == "read" and connection.in_transaction:
            # A read must not leave a transaction open for the next write to stumble on.
            await _rollback_quietly(connection)
        return outcome

    async def _commit(self, group: list[_Job]) -> list[Outcome]:
        """Run the group in one transaction, each write in its own savepoint; commit once
        (``group_commit``). A group of one needs no savepoint: its failure rolls back the
        whole transaction."""
        connection = self._connection
        flush = any(job.durable for job in group)
        if all(job.in_one_trip for job in group):
            raw = one_trip.raw_connection(connection)
            operations = [job.operation for job in group]
            outcome = await self._trip(lambda: one_trip.commit(raw, operations, flush=flush))
            if outcome[1] is not None:  # the trip itself failed (the connection is closed)
                return [outcome] * len(group)
            outcomes: list[Outcome] = outcome[0]
            return outcomes
        plan = group_commit.plan(len(group), connection, flush=flush)
        try:
            step = next(plan)
            while True:
                try:
                    if isinstance(step, int):
                        answer = await self._outcome(group[step])
                    else:
                        await connection.execute(step)
                        answer = None
                except BaseException as error:  # the plan's to handle, or to hand back
                    step = plan.throw(error)
                else:
                    step = plan.send(answer)
        except StopIteration as done:
            outcomes = done.value
            return outcomes

    async def _outcome(self, job: _Job) -> Outcome:
        if job.in_one_trip:
            raw = one_trip.raw_connection(self._connection)
            return await self._trip(functools.partial(job.operation, raw))
        return await _call(job.operation, self._connection)

    async def _trip(self, function: Callable[[], Any]) -> Outcome:
        try:
            return await one_trip.on_thread(self._connection, function), None
        except Exception as error:
            return None, error


async def _call(operation: Operation[Any], connection: aiosqlite.Connection) -> Outcome:
    try:
        return await operation(connection), None
    except asyncio.CancelledError as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the runner itself is being cancelled
        return None, error  # the operation's own: it failed, and only it
    except Exception as error:  # handed to the awaiting coroutine, raised there
        return None, error


def _settle(
    job: _Job, result: Any, error: BaseException | None, *, path: Path | None = None
) -> None:
    if job.future.done():  # the caller was cancelled; what it asked for is done anyway
        return
    if path is not None and isinstance(error, sqlite3.Error | OSError):
        # Which file failed travels with the error, for whoever says it to a person.
        error.add_note(f"{PATH_NOTE}{path}")
    if isinstance(error, asyncio.CancelledError):
        job.future.cancel()
    elif error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


async def _rollback_quietly(connection: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open, without hiding the exception that caused it."""
    try:
        # sqlite3's rollback() is a no-op without an open transaction.
        await connection.rollback()
    except sqlite3.Error:
        log.warning("ROLLBACK failed", exc_info=True)


async def _configure(connection: aiosqlite.Connection, path: Path, busy_timeout_ms: int) -> None:
    expected: dict[str, Any] = {
        # The audit log and the cost ledger must survive a crash or a power cut.
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": busy_timeout_ms,
        "synchronous": 2,  # FULL
    }
    await connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute("PRAGMA foreign_keys = ON")
    await connection.execute("PRAGMA synchronous = FULL")
    for pragma, wanted in expected.items():
        rows = list(await connection.execute_fetchall(f"PRAGMA {pragma}"))
        actual = rows[0][0] if rows else None
        if actual != wanted:
            raise StorageError(
                f"Could not set PRAGMA {pragma} to {wanted!r} on {path} (it is {actual!r}). "
                "Keep AGENTSPACE_HOME on a local filesystem that supports SQLite WAL mode."
            )


def _cannot_open(path: Path, error: BaseException) -> StorageError:
    if not isinstance(error, OSError):  # an OSError names its own file
        error.add_note(f"{PATH_NOTE}{path}")
    problem = storage_problem(error, path)
    if problem is None:
        return StorageError(f"Cannot open the database {path}: {error}.")
    return StorageError(f"Cannot open the database: {problem}")


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
