"""Security-relevant events (key use, access refused, config changes), newest first."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database

USER_AGENT_MAX_CHARS = 512
DETAIL_MAX_CHARS = 1024


@attrs.frozen
class AuditEntry:
    id: int
    event: str
    provider: str | None
    remote_addr: str | None
    user_agent: str | None
    detail: str | None
    created_at: str


@attrs.frozen
class AuditEvent:
    """An event to write; its time is when it happened, not when it is written."""

    event: str
    provider: str | None = None
    remote_addr: str | None = None
    user_agent: str | None = None
    detail: str | None = None
    # The clock looked up when the event is made (a test may have set it).
    created_at: str = attrs.field(factory=lambda: utc_now_iso())

    def values(self) -> tuple[str, str | None, str | None, str | None, str | None, str]:
        # Both come from outside (a client header, an error text): cap what one event can cost.
        user_agent = _truncate(self.user_agent, USER_AGENT_MAX_CHARS)
        detail = _truncate(self.detail, DETAIL_MAX_CHARS)
        return (self.event, self.provider, self.remote_addr, user_agent, detail, self.created_at)


_INSERT = (
    "INSERT INTO audit_log (event, provider, remote_addr, user_agent, detail, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        event: str,
        *,
        provider: str | None = None,
        remote_addr: str | None = None,
        user_agent: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        values = AuditEvent(event, provider, remote_addr, user_agent, detail).values()

        def insert(raw: sqlite3.Connection) -> sqlite3.Row:
            # fetchall: the statement runs to its end, none left open at the COMMIT.
            rows: list[sqlite3.Row] = raw.execute(
                _INSERT
                + " RETURNING id, event, provider, remote_addr, user_agent, detail, created_at",
                values,
            ).fetchall()
            return rows[0]

        # In one trip: a write group holding any other kind of write runs a trip a statement,
        # and a proxied request's key-use row shares its group with the usage rows.
        return _entry(await self._db.write_in_one_trip(insert))

    async def record_all(self, events: Sequence[AuditEvent]) -> None:
        """Several events in one write, in their order (one trip to the database thread for
        all of them, where each ``record`` is a trip, a future and a wake-up of its own)."""
        rows = [event.values() for event in events]
        await self._db.write_in_one_trip(lambda raw: raw.executemany(_INSERT, rows))

    async def recent(self, *, limit: int = 50, provider: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first, optionally for one provider only."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if provider is None:
            rows = await self._db.fetchall(
                """
                SELECT id, event, provider, remote_addr, user_agent, detail, created_at
                FROM audit_log
                ORDER BY created_at DESC, id DESC
                LIMIT ?
                """,
                (limit,),
            )
        else:
            rows = await self._db.fetchall(
                """
                SELECT id, event, provider, remote_addr, user_agent, detail, created_at
                FROM audit_log
                WHERE provider = ?
                ORDER BY created_at DESC, id DESC
                LIMIT ?
                """,
                (provider, limit),
            )
        return [_entry(row) for row in rows]


def _truncate(text: str | None, max_chars: int) -> str | None:
    return None if text is None else text[:max_chars]


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        event=row["event"],
        provider=row["provider"],
        remote_addr=row["remote_addr"],
        user_agent=row["user_agent"],
        detail=row["detail"],
        created_at=row["created_at"],
    )
