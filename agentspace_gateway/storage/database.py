"""The one SQLite connection of this process, and the lock that lets coroutines share it."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from agentspace_gateway.storage.errors import StorageError

log = logging.getLogger(__name__)

# STRICT tables and RETURNING both arrived by 3.37.
MIN_SQLITE_VERSION = (3, 37, 0)
PRIVATE_FILE_MODE = 0o600
_SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")

Params = Iterable[Any]


class Database:
    """Serialises every statement through one aiosqlite connection opened in autocommit mode.

    Holding the lock across a whole transaction is what keeps one coroutine's statements out
    of another's ``BEGIN``/``COMMIT``. The lock is not re-entrant: inside ``transaction()``
    use the connection it yields, never ``fetchone``/``fetchall`` (that raises, rather than
    waiting forever on itself).
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection = connection
        self._path = path
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

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
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            await _configure(connection, path, busy_timeout_ms)
            _restrict_permissions(path)
        except BaseException as error:
            # An unclosed aiosqlite connection keeps a non-daemon thread alive.
            await connection.close()
            if isinstance(error, sqlite3.DatabaseError):
                raise StorageError(
                    f"Cannot open the database {path}: {error}. If another program holds it, "
                    "stop that program; if the file is damaged, move it aside and start again."
                ) from error
            raise
        return cls(connection, path)

    @property
    def path(self) -> Path:
        return self._path

    async def close(self) -> None:
        """Close the connection once any running transaction has finished. Idempotent."""
        async with self._hold() as connection:
            await connection.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` and re-raise on any exception."""
        async with self._hold() as connection:
            try:
                # Inside the try: if this task is cancelled while BEGIN is queued, the BEGIN
                # still runs on the worker thread and must be rolled back.
                await connection.execute("BEGIN IMMEDIATE")
                yield connection
                await connection.execute("COMMIT")
            except BaseException:
                await rollback_quietly(connection)
                raise

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[aiosqlite.Connection]:
        """The bare connection under the lock, outside any transaction.

        For the migrator, which must run ``executescript`` (that commits any open
        transaction) and so manages its own ``BEGIN``/``COMMIT``.
        """
        async with self._hold() as connection:
            yield connection

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._hold() as connection, connection.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._hold() as connection:
            return list(await connection.execute_fetchall(sql, params))

    @asynccontextmanager
    async def _hold(self) -> AsyncIterator[aiosqlite.Connection]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError(
                "This task already holds the database (inside transaction() or locked()). "
                "Use the connection that context gave you."
            )
        async with self._lock:
            self._holder = task
            try:
                yield self._connection
            finally:
                self._holder = None


async def rollback_quietly(connection: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open, without hiding the exception that caused it."""
    try:
        # sqlite3's rollback() checks for an open transaction on the worker thread, in
        # order after any statement still queued there; it is a no-op without one.
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
        async with connection.execute(f"PRAGMA {pragma}") as cursor:
            row = await cursor.fetchone()
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
