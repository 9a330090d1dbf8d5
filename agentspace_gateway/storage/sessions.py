"""Chat sessions: one row per conversation with an agent, keyed ``agent:{agent_id}:{id}``."""

from __future__ import annotations

import re
import sqlite3

import aiosqlite
import attrs
import nanoid

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database

_AGENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@attrs.frozen
class SessionRow:
    id: str
    session_key: str
    agent_id: str
    model: str
    created_at: str
    last_active_at: str


def session_key_for(agent_id: str, session_id: str) -> str:
    return f"agent:{agent_id}:{session_id}"


def find_with_owner(
    raw: sqlite3.Connection, ref: str, *, by_key: bool
) -> tuple[SessionRow, str | None] | None:
    """On the connection's thread (``one_trip``): the session ``ref`` names (its id, or its
    key when ``by_key``) and the name of the client whose key opened it (None when the
    owner's own client did)."""
    column = "session_key" if by_key else "id"
    rows = raw.execute(
        f"""
        SELECT sessions.id, session_key, agent_id, model, sessions.created_at,
            last_active_at, client_keys.name AS owner
        FROM sessions LEFT JOIN client_keys ON client_keys.id = sessions.origin_client
        WHERE sessions.{column} = ?
        """,  # noqa: S608 - the column is one of two constants
        (ref,),
    ).fetchall()
    if not rows:
        return None
    owner: str | None = rows[0]["owner"]
    return _session(rows[0]), owner


class SessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, *, agent_id: str, model: str) -> SessionRow:
        # The agent id is part of the key, whose parts are split on ":".
        if not _AGENT_ID.fullmatch(agent_id):
            raise ValueError(
                f"Invalid agent id {agent_id!r}: use 1 to 64 characters from A-Z, a-z, 0-9, "
                "'_' and '-'."
            )
        session_id: str = nanoid.generate()
        now = utc_now_iso()
        values = (session_id, session_key_for(agent_id, session_id), agent_id, model, now, now)

        async def insert(connection: aiosqlite.Connection) -> sqlite3.Row:
            (row,) = await connection.execute_fetchall(
                """
                INSERT INTO sessions (id, session_key, agent_id, model, created_at, last_active_at)
                VALUES (?, ?, ?, ?, ?, ?)
                RETURNING id, session_key, agent_id, model, created_at, last_active_at
                """,
                values,
            )
            return row

        return _session(await self._db.write(insert))

    async def get(self, session_id: str) -> SessionRow | None:
        row = await self._db.fetchone(
            """
            SELECT id, session_key, agent_id, model, created_at, last_active_at
            FROM sessions
            WHERE id = ?
            """,
            (session_id,),
        )
        return None if row is None else _session(row)

    async def get_by_key(self, session_key: str) -> SessionRow | None:
        row = await self._db.fetchone(
            """
            SELECT id, session_key, agent_id, model, created_at, last_active_at
            FROM sessions
            WHERE session_key = ?
            """,
            (session_key,),
        )
        return None if row is None else _session(row)

    async def list_recent(self, *, limit: int = 50, offset: int = 0) -> list[SessionRow]:
        """Most recently active first."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got {limit} and {offset}")
        rows = await self._db.fetchall(
            """
            SELECT id, session_key, agent_id, model, created_at, last_active_at
            FROM sessions
            ORDER BY last_active_at DESC, id DESC
            LIMIT ? OFFSET ?
            """,
            (limit, offset),
        )
        return [_session(row) for row in rows]

    async def list_with_message_counts(
        self, *, limit: int | None = None, after: str | None = None, client: str | None = None
    ) -> list[tuple[SessionRow, int]]:
        """Sessions with their message counts, most recently active first, in one query.

        ``limit`` makes it a page; ``after`` (a session id) starts it just past that session,
        where the previous page ended (an unknown session gives an empty page). ``client``:
        only the sessions opened with client keys of that name. The count is
        a correlated subquery over the (session_id, id) index of messages: one index range
        per session listed, and no query per session from Python.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        conditions: list[str] = []
        params: list[str | int] = []
        if after is not None:
            conditions.append(
                "(last_active_at, id) < (SELECT last_active_at, id FROM sessions WHERE id = ?)"
            )
            params.append(after)
        if client is not None:
            conditions.append("origin_client IN (SELECT id FROM client_keys WHERE name = ?)")
            params.append(client)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        params.append(-1 if limit is None else limit)
        rows = await self._db.fetchall(
            f"""
            SELECT id, session_key, agent_id, model, created_at, last_active_at,
                   (SELECT COUNT(*) FROM messages WHERE messages.session_id = sessions.id)
                       AS message_count
            FROM sessions {where}
            ORDER BY last_active_at DESC, id DESC
            LIMIT ?
            """,  # noqa: S608 - the WHERE clause is made of constants
            params,
        )
        return [(_session(row), row["message_count"]) for row in rows]

    async def touch(self, session_id: str) -> None:
        """Mark the session active now. Raises LookupError for an unknown session."""
        await self._db.write_in_one_trip(lambda raw: touch_session(raw, session_id))


def touch_session(raw: sqlite3.Connection, session_id: str) -> None:
    """Inside a caller's transaction, on the connection's thread (``one_trip``), mark the
    session active now."""
    # max(): a clock stepping back must not move a session down the recent list.
    cursor = raw.execute(
        "UPDATE sessions SET last_active_at = max(last_active_at, ?) WHERE id = ?",
        (utc_now_iso(), session_id),
    )
    if cursor.rowcount == 0:
        raise LookupError(f"No session with id {session_id!r}.")


def _session(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        id=row["id"],
        session_key=row["session_key"],
        agent_id=row["agent_id"],
        model=row["model"],
        created_at=row["created_at"],
        last_active_at=row["last_active_at"],
    )
