"""The messages of a session, in the order they were added."""

from __future__ import annotations

import sqlite3
from typing import Literal, get_args

import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.sessions import SessionRow, find_with_owner, touch_session

Role = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = get_args(Role)

_COLUMNS = (
    "id, session_id, role, content, created_at, token_count, token_estimate, complete, request_id"
)
# Newest first, so the index (session_id, id) is read backwards and nothing is sorted.
_RECENT = f"SELECT {_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?"  # noqa: S608
_NEWER = f"SELECT {_COLUMNS} FROM messages WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?"  # noqa: S608


@attrs.frozen
class MessageRow:
    id: int
    session_id: str
    role: Role
    content: str
    created_at: str
    token_count: int | None
    token_estimate: int | None = None
    # False for an assistant reply that was cut short; its partial text is kept.
    complete: bool = True
    request_id: str | None = None


@attrs.frozen
class HistoryVersion:
    """What identifies a session's messages as they are: appending or removing one changes it."""

    last_id: int
    count: int


@attrs.frozen
class RecentMessages:
    version: HistoryVersion
    # None: unchanged since the version the caller already had.
    messages: list[MessageRow] | None


@attrs.frozen
class HistoryRead:
    version: HistoryVersion
    messages: list[MessageRow]
    # True: ``messages`` are only those stored since the version the caller had (nothing
    # else changed); False: the last ``limit`` of the session.
    newer_only: bool


@attrs.frozen
class SessionOpening:
    """A session as a chat.send finds it: the row, who owns it, and its recent history."""

    session: SessionRow
    # The name of the client whose key opened the session; None for the owner's own.
    owner: str | None
    history: HistoryRead


@attrs.frozen
class NewMessage:
    session_id: str
    role: Role
    content: str
    token_count: int | None = None
    token_estimate: int | None = None
    complete: bool = True
    request_id: str | None = None


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        session_id: str,
        role: Role,
        content: str,
        *,
        token_count: int | None = None,
        token_estimate: int | None = None,
        complete: bool = True,
        request_id: str | None = None,
    ) -> MessageRow:
        """Append a message and mark its session active, together or not at all.

        An unknown ``session_id`` raises ``sqlite3.IntegrityError`` (FOREIGN KEY).
        """
        return await self.append(
            NewMessage(session_id, role, content, token_count, token_estimate, complete, request_id)
        )

    async def append(self, message: NewMessage) -> MessageRow:
        """``add`` for a message already built (chat builds it once, for the request too)."""
        return await self._db.write_in_one_trip(lambda raw: insert_message(raw, message))

    async def append_if_visible(
        self, message: NewMessage, *, client_name: str | None
    ) -> MessageRow | None:
        """``append``, only if the message's session exists and, with ``client_name``, was
        opened with that client's keys; None (nothing written) otherwise. For a write
        queued before the caller has seen the session: it can never land where the reader
        would not have let it."""

        def insert(raw: sqlite3.Connection) -> MessageRow | None:
            found = find_with_owner(raw, message.session_id, by_key=False)
            if found is None or (client_name is not None and found[1] != client_name):
                return None
            return insert_message(raw, message)

        return await self._db.write_in_one_trip(insert)

    async def recent_for_session(self, session_id: str, *, limit: int) -> list[MessageRow]:
        """The last ``limit`` messages, oldest first: the history a request carries."""
        rows = await self._db.fetchall(_RECENT, (session_id, limit))
        return [_message(row) for row in reversed(rows)]

    async def recent_unless_unchanged(
        self, session_id: str, *, limit: int, known: HistoryVersion | None
    ) -> RecentMessages:
        """Like ``recent_for_session``, but only the version when it is still ``known``.

        One turn on the connection either way: the version is two index lookups, and the
        rows (up to hundreds of kilobytes) are read only when the caller's copy is stale.
        Nothing is written between the two queries (operations run one at a time), so the
        version describes the rows read.
        """

        def read(raw: sqlite3.Connection) -> RecentMessages:
            version = _version(raw, session_id)
            if version == known:
                return RecentMessages(version, None)
            rows = raw.execute(_RECENT, (session_id, limit)).fetchall()
            return RecentMessages(version, [_message(row) for row in reversed(rows)])

        return await self._db.read_in_one_trip(read)

    async def recent_or_newer(
        self, session_id: str, *, limit: int, known: HistoryVersion | None
    ) -> HistoryRead:
        """The messages stored since ``known`` when that is all that changed (a chat.send
        reads the two its last exchange added, not its whole history again); else, like
        ``recent_for_session``, the last ``limit``. One trip either way."""

        return await self._db.read_in_one_trip(
            lambda raw: _recent_or_newer(raw, session_id, limit, known)
        )

    async def session_and_recent(
        self, ref: str, *, by_key: bool, limit: int, known: HistoryVersion | None
    ) -> SessionOpening | None:
        """The session ``ref`` names (its id, or its key when ``by_key``), its owner, and
        its history as ``recent_or_newer`` reads it (``known`` applies only to a session
        named by its id), all in one trip; None: no such session.
        A chat.send needs all three before its request can go upstream, and each trip
        to the database thread and back was about a quarter of a millisecond of the time
        to the first delta with one stream."""

        def read(raw: sqlite3.Connection) -> SessionOpening | None:
            found = find_with_owner(raw, ref, by_key=by_key)
            if found is None:
                return None
            session, owner = found
            usable = None if by_key else known
            return SessionOpening(session, owner, _recent_or_newer(raw, session.id, limit, usable))

        return await self._db.read_in_one_trip(read)

    async def count_for_session(self, session_id: str) -> int:
        row = await self._db.fetchone(
            "SELECT count(*) FROM messages WHERE session_id = ?", (session_id,)
        )
        assert row is not None  # an aggregate always yields one row
        count: int = row[0]
        return count


def _recent_or_newer(
    raw: sqlite3.Connection, session_id: str, limit: int, known: HistoryVersion | None
) -> HistoryRead:
    version = _version(raw, session_id)
    if known is not None and known.last_id <= version.last_id:
        rows = raw.execute(_NEWER, (session_id, known.last_id, limit)).fetchall()
        # Ids only grow: the rows after the known last are the new ones, and the count says
        # none of the known ones went meanwhile.
        if known.count + len(rows) == version.count:
            return HistoryRead(version, [_message(row) for row in rows], True)
    rows = raw.execute(_RECENT, (session_id, limit)).fetchall()
    return HistoryRead(version, [_message(row) for row in reversed(rows)], False)


def _version(raw: sqlite3.Connection, session_id: str) -> HistoryVersion:
    """The session's history version: its last message id and its count (two index lookups)."""
    ((last_id, count),) = raw.execute(
        "SELECT coalesce(max(id), 0), count(*) FROM messages WHERE session_id = ?",
        (session_id,),
    ).fetchall()
    return HistoryVersion(last_id, count)


def insert_message(raw: sqlite3.Connection, message: NewMessage) -> MessageRow:
    """Inside a caller's transaction, on the connection's thread (``one_trip``): insert the
    message and mark its session active."""
    if message.role not in ROLES:
        raise ValueError(f"Invalid role {message.role!r}: use one of {', '.join(ROLES)}.")
    (row,) = raw.execute(
        f"""
        INSERT INTO messages (
            session_id, role, content, created_at, token_count, token_estimate, complete,
            request_id
        )
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - column names are constants
        (
            message.session_id,
            message.role,
            message.content,
            utc_now_iso(),
            message.token_count,
            message.token_estimate,
            int(message.complete),
            message.request_id,
        ),
    ).fetchall()
    touch_session(raw, message.session_id)
    return _message(row)


def _message(row: sqlite3.Row) -> MessageRow:
    return MessageRow(
        id=row["id"],
        session_id=row["session_id"],
        role=row["role"],
        content=row["content"],
        created_at=row["created_at"],
        token_count=row["token_count"],
        token_estimate=row["token_estimate"],
        complete=bool(row["complete"]),
        request_id=row["request_id"],
    )
