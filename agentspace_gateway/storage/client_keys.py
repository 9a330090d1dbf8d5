"""Client keys for the Anthropic-compatible HTTP API: only a hash of each key is stored.

A key is ``asg_`` and 256 random bits in base64url (43 characters). Being that random, a
plain sha256 is the right hash: there is nothing for a slow hash to protect against, and the
key is found by its hash through an index instead of being compared against every row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from pathlib import Path

import aiosqlite
import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.change_marker import (
    CLIENT_KEYS,
    Seen,
    announce_change,
    marker_path,
    seen,
)
from agentspace_gateway.storage.database import Database

KEY_PREFIX = "asg_"
_KEY_BYTES = 32
# The prefix and the first characters after it: enough to tell keys apart in a listing.
_SHOWN_CHARS = len(KEY_PREFIX) + 6
# A client name is also the agent id of the sessions it opens (see sessions.py).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_COLUMNS = "id, name, key_prefix, created_at, expires_at, revoked_at, default_session_id"
_BY_HASH = f"SELECT {_COLUMNS} FROM client_keys WHERE key_sha256 = ?"  # noqa: S608


class ClientKeyError(ValueError):
    """A client key operation the caller can correct (bad name, name taken, unknown name)."""


@attrs.frozen
class ClientKey:
    id: int
    name: str
    key_prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    default_session_id: str | None

    def usable_at(self, now: str) -> bool:
        # ISO 8601 UTC text with milliseconds sorts in time order.
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@attrs.frozen
class IssuedKey:
    """A new key: ``secret`` is shown once and never stored."""

    client: ClientKey
    secret: str


def key_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_client_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX)


def check_client_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ClientKeyError(
            f"Invalid client name {name!r}: use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'."
        )
    return name


class ClientKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, name: str, *, expires_at: str | None = None) -> IssuedKey:
        check_client_name(name)
        secret = KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
        values = (name, key_sha256(secret), secret[:_SHOWN_CHARS], utc_now_iso(), expires_at)

        async def insert(connection: aiosqlite.Connection) -> sqlite3.Row:
            try:
                (row,) = await connection.execute_fetchall(
                    f"""
                    INSERT INTO client_keys (name, key_sha256, key_prefix, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    RETURNING {_COLUMNS}
                    """,  # noqa: S608 - the column list is a constant
                    values,
                )
            except sqlite3.IntegrityError:
                raise ClientKeyError(
                    f"A client named {name!r} already has a key. Revoke it first "
                    f"(agentspace-gateway clients revoke {name}) or choose another name."
                ) from None
            return row

        issued = IssuedKey(_client(await self._db.write(insert)), secret)
        announce_change(self._db.path, CLIENT_KEYS)
        return issued

    async def find_by_secret(self, secret: str) -> ClientKey | None:
        """The key whose hash matches, revoked and expired ones included (the caller decides)."""
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM client_keys WHERE key_sha256 = ?",  # noqa: S608
            (key_sha256(secret),),
        )
        return None if row is None else _client(row)

    async def list_all(self) -> list[ClientKey]:
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM client_keys ORDER BY name, id"  # noqa: S608
        )
        return [_client(row) for row in rows]

    async def spend(self) -> dict[int, tuple[int, int]]:
        """Per client key id: requests billed and their cost in nano-dollars."""
        rows = await self._db.fetchall(
            """
            SELECT client_key_id, count(*), sum(cost_nanousd) FROM usage_records
            WHERE client_key_id IS NOT NULL GROUP BY client_key_id
            """
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    async def revoke(self, name: str) -> ClientKey:
        """Revoke the live key of that name; ClientKeyError when there is none."""

        async def update(connection: aiosqlite.Connection) -> sqlite3.Row | None:
            rows = await connection.execute_fetchall(
                f"""
                UPDATE client_keys SET revoked_at = ?
                WHERE name = ? AND revoked_at IS NULL
                RETURNING {_COLUMNS}
                """,  # noqa: S608 - the column list is a constant
                (utc_now_iso(), name),
            )
            return next(iter(rows), None)

        row = await self._db.write(update)
        if row is None:
            raise ClientKeyError(
                f"No live client key named {name!r}. See them with: agentspace-gateway clients list"
            )
        announce_change(self._db.path, CLIENT_KEYS)
        return _client(row)

    async def revoked_among(self, ids: set[int]) -> set[int]:
        """Which of these keys are no longer usable now (revoked, or expired meanwhile)."""
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        rows = await self._db.fetchall(
            f"""
            SELECT id FROM client_keys
            WHERE id IN ({marks}) AND (revoked_at IS NOT NULL OR expires_at <= ?)
            """,  # noqa: S608 - only placeholders are inlined
            (*sorted(ids), utc_now_iso()),
        )
        return {row["id"] for row in rows}


class ClientKeyReader:
    """Looks keys up on read-only connections of its own, beside the write queue.

    Every proxied request checks its key afresh (a revocation made by the CLI applies from
    the next request), so the check must not wait behind the process's queued writes, each
    an fsync: through the shared queue it added 5-10 ms to every request's first byte. WAL
    lets these connections read the last committed state while a write is in progress.

    The look-up runs on the calling (event loop) thread: one indexed read of a small table
    takes tens of microseconds, where a trip to a connection's thread and back took 0.25 ms
    p50 of each first byte, and 50 requests starting together queued on that one thread.
    A WAL reader waits for no writer, so the read blocks nothing; only in the rare moments
    SQLite answers busy to a reader (another process recovering the WAL, say) does the
    look-up go to the threaded connection, which waits its busy timeout as before.

    A key found is kept, by its hash, until the table's change marker says a key was issued
    or revoked (``storage/change_marker.py``: ``ClientKeyRepository`` replaces it after each
    commit, in whichever process), and never longer than ``KEPT_SECONDS``. Even on the loop's
    thread the read cost 60-70 us of every request at 50 in flight (every usage row committed
    meanwhile makes SQLite read the table's pages again); the marker is one ``stat``. A
    revocation still applies from the next request, and within ``KEPT_SECONDS`` if its
    marker could not be written (logged). A key not found is never kept, and a kept key's
    expiry is checked at each use by the caller. The kept ``default_session_id`` may be
    older than the row's: where it matters it is read from the database.
    """

    KEPT_SECONDS = 1.0
    MAX_KEPT = 1024

    def __init__(
        self, connection: sqlite3.Connection, waiting: aiosqlite.Connection, database: Path
    ) -> None:
        self._connection = connection
        self._waiting = waiting
        self._marker = marker_path(database, CLIENT_KEYS)
        self._seen: Seen = None
        # Hash of the key -> the row and when it was read (time.monotonic()).
        self._kept: dict[str, tuple[ClientKey, float]] = {}

    @classmethod
    async def open(cls, path: Path) -> ClientKeyReader:
        uri = f"file:{path}?mode=ro"
        # timeout 0: busy is answered at once (and the threaded connection asked instead).
        connection = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        waiting = await aiosqlite.connect(uri, uri=True)
        waiting.row_factory = sqlite3.Row
        return cls(connection, waiting, path)

    async def close(self) -> None:
        self._connection.close()
        await self._waiting.close()

    async def find_by_secret(self, secret: str) -> ClientKey | None:
        """The key whose hash matches, revoked and expired ones included (the caller decides)."""
        digest = key_sha256(secret)
        # Looked at before the read: a change committed during it is seen next time.
        now_seen = seen(self._marker)
        if now_seen != self._seen:
            self._kept.clear()
            self._seen = now_seen
        now = time.monotonic()
        kept = self._kept.get(digest)
        if kept is not None and now - kept[1] < self.KEPT_SECONDS:
            return kept[0]
        values = (digest,)
        try:
            rows = self._connection.execute(_BY_HASH, values).fetchall()
        except sqlite3.OperationalError:
            rows = list(await self._waiting.execute_fetchall(_BY_HASH, values))
        found = next((_client(row) for row in rows), None)
        if found is not None:
            if len(self._kept) >= self.MAX_KEPT:
                self._kept.pop(next(iter(self._kept)))
            self._kept[digest] = (found, now)
        return found


def _client(row: sqlite3.Row) -> ClientKey:
    return ClientKey(
        id=row["id"],
        name=row["name"],
        key_prefix=row["key_prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        default_session_id=row["default_session_id"],
    )
