"""Database work done in one trip to the connection's thread.

Every aiosqlite call is a trip: the statement is queued for the connection's thread, which
wakes, runs it, and wakes the event loop with the result. On this 2-core machine a trip cost
about as much CPU as the Python on either side of it, and a chat made about twenty (each
write's BEGIN, statements, savepoints and COMMIT; each read's queries). An operation written
as a plain function of the ``sqlite3`` connection (``SyncOperation``) runs whole in one trip
instead, and a write group made only of such operations runs, BEGIN to COMMIT, in one trip.
Nothing else changes: the same transaction, the same savepoints, the same outcome for each
write, and the thread finishes what it began even if the loop's side is cancelled meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
# A function of the sqlite3 connection, run on its thread: it must not touch the event loop.
SyncOperation = Callable[[sqlite3.Connection], T]
Outcome = tuple[Any, BaseException | None]


def on_thread(connection: aiosqlite.Connection, function: Callable[[], T]) -> Awaitable[T]:
    """``function()`` on the connection's own thread, in one trip.

    aiosqlite runs each of its calls through ``_execute``; it has no public way to run a
    function of ours there, and the sqlite3 connection may be used from no other thread.
    The version range in setup.cfg pins the aiosqlite this is written against.
    """
    execute = cast(Callable[[Callable[[], T]], Awaitable[T]], connection._execute)
    return execute(function)


def raw_connection(connection: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``connection``; use it only on its thread (``on_thread``)."""
    raw: sqlite3.Connection = connection._conn  # see on_thread
    return raw


def read(raw: sqlite3.Connection, operation: SyncOperation[Any]) -> Outcome:
    """One read outside any transaction; never leaves one open for the next write."""
    if raw.in_transaction:  # left by an operation cut short: never inherited
        _rollback_quietly(raw)
    try:
        outcome: Outcome = (operation(raw), None)
    except Exception as error:  # handed to the awaiting coroutine, raised there
        outcome = (None, error)
    if raw.in_transaction:
        _rollback_quietly(raw)
    return outcome


def commit(
    raw: sqlite3.Connection, operations: Sequence[SyncOperation[Any]], *, flush: bool
) -> list[Outcome]:
    """The group in one transaction, each in its own savepoint when there are several;
    committed once. The same outcomes, failure for failure, as ``Database._commit_group``."""
    if raw.in_transaction:  # left by an operation cut short: never inherited
        _rollback_quietly(raw)
    if not flush:
        raw.execute("PRAGMA synchronous = NORMAL")
    try:
        return _commit_group(raw, operations, use_savepoints=len(operations) > 1)
    finally:
        if not flush:
            raw.execute("PRAGMA synchronous = FULL")


def _commit_group(
    raw: sqlite3.Connection, operations: Sequence[SyncOperation[Any]], *, use_savepoints: bool
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    open_since: int | None = None  # the first write of the open transaction

    def lose(error: BaseException) -> None:
        # The transaction is gone, and with it every write made in it.
        assert open_since is not None
        for index in range(open_since, len(outcomes)):
            outcomes[index] = (None, outcomes[index][1] or error)

    try:
        for operation in operations:
            if open_since is not None and not raw.in_transaction:
                # SQLite rolled back by itself (disk full, I/O error) on the last write.
                last_error = outcomes[-1][1]
                assert last_error is not None
                lose(last_error)
                open_since = None
            if open_since is None:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as refused:
                    outcomes.append((None, refused))
                    continue
                open_since = len(outcomes)
            if use_savepoints:
                raw.execute("SAVEPOINT write")
            try:
                outcome: Outcome = (operation(raw), None)
            except Exception as error:
                outcome = (None, error)
            failure = outcome[1]
            if use_savepoints and raw.in_transaction:
                if failure is not None:
                    raw.execute("ROLLBACK TO write")
                raw.execute("RELEASE write")
            elif failure is not None and raw.in_transaction:
                raw.execute("ROLLBACK")
                open_since = None
            outcomes.append(outcome)
        if open_since is not None:
            if not raw.in_transaction:
                last_error = outcomes[-1][1]
                assert last_error is not None
                lose(last_error)
            else:
                try:
                    raw.execute("COMMIT")
                except sqlite3.Error as unflushed:
                    _rollback_quietly(raw)
                    lose(unflushed)
    except Exception as error:  # a savepoint or rollback itself failed
        _rollback_quietly(raw)
        return [(None, error)] * len(operations)
    return outcomes


def _rollback_quietly(raw: sqlite3.Connection) -> None:
    try:
        raw.rollback()  # a no-op without an open transaction
    except sqlite3.Error:
        log.warning("ROLLBACK failed", exc_info=True)
