"""The messages of a session, in the order they were added."""

from __future__ import annotations

import sqlite3
from typing import Literal, get_args

import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.sessions import touch_session

Role = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = get_args(Role)


@attrs.frozen
class MessageRow:
    id: int
    session_id: str
    role: Role
    content: str
    created_at: str
    token_count: int | None


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, session_id: str, role: Role, content: str, *, token_count: int | None = None
    ) -> MessageRow:
        """Append a message and mark its session active, together or not at all.

        An unknown ``session_id`` raises ``sqlite3.IntegrityError`` (FOREIGN KEY).
        """
        if role not in ROLES:
            raise ValueError(f"Invalid role {role!r}: use one of {', '.join(ROLES)}.")
        async with self._db.transaction() as connection:
            rows = await connection.execute_fetchall(
                """
                INSERT INTO messages (session_id, role, content, created_at, token_count)
                VALUES (?, ?, ?, ?, ?)
                RETURNING id, session_id, role, content, created_at, token_count
                """,
                (session_id, role, content, utc_now_iso(), token_count),
            )
            await touch_session(connection, session_id)
        return _message(next(iter(rows)))

    async def for_session(self, session_id: str) -> list[MessageRow]:
        """Oldest first."""
        rows = await self._db.fetchall(
            """
            SELECT id, session_id, role, content, created_at, token_count
            FROM messages
            WHERE session_id = ?
            ORDER BY id
            """,
            (session_id,),
        )
        return [_message(row) for row in rows]

    async def count_for_session(self, session_id: str) -> int:
        row = await self._db.fetchone(
            "SELECT count(*) FROM messages WHERE session_id = ?", (session_id,)
        )
        assert row is not None  # an aggregate always yields one row
        count: int = row[0]
        return count


def _message(row: sqlite3.Row) -> MessageRow:
    return MessageRow(
        id=row["id"],
        session_id=row["session_id"],
        role=row["role"],
        content=row["content"],
        created_at=row["created_at"],
        token_count=row["token_count"],
    )
