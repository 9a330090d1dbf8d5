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

from agentspace_gateway.storage import group_commit
from agentspace_gateway.storage.group_commit import Outcome

log = logging.getLogger(__name__)

T = TypeVar("T")
# A function of the sqlite3 connection, run on its thread: it must not touch the event loop.
SyncOperation = Callable[[sqlite3.Connection], T]


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
    outcome = _outcome(operation, raw)
    if raw.in_transaction:
        _rollback_quietly(raw)
    return outcome


def commit(
    raw: sqlite3.Connection, operations: Sequence[SyncOperation[Any]], *, flush: bool
) -> list[Outcome]:
    """The group in one transaction, each in its own savepoint when there are several;
    committed once. The same steps, failure for failure, as ``Database._commit``."""
    plan = group_commit.plan(len(operations), raw, flush=flush)
    try:
        step = next(plan)
        while True:
            try:
                if isinstance(step, int):
                    answer = _outcome(operations[step], raw)
                else:
                    raw.execute(step)
                    answer = None
            except BaseException as error:  # the plan's to handle, or to hand back
                step = plan.throw(error)
            else:
                step = plan.send(answer)
    except StopIteration as done:
        outcomes: list[Outcome] = done.value
        return outcomes


def _outcome(operation: SyncOperation[Any], raw: sqlite3.Connection) -> Outcome:
    try:
        return operation(raw), None
    except Exception as error:  # handed to the awaiting coroutine, raised there
        return None, error


def _rollback_quietly(raw: sqlite3.Connection) -> None:
    try:
        raw.rollback()  # a no-op without an open transaction
    except sqlite3.Error:
        log.warning("ROLLBACK failed", exc_info=True)
