"""Sessions opened by HTTP API clients, and the attribution of their usage rows.

Such a session is an ordinary one (listed, reported, inspected like any other); it also
records which client key opened it (``origin_client``), the caller's own id for it
(``external_id``) and the caller's agent that first used it (``origin_agent``). Its agent id
is the client's name, so ``agent:{client}:{id}`` tells at a glance where it came from.
"""

from __future__ import annotations

import sqlite3

import aiosqlite
import attrs
import nanoid

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.sessions import session_key_for, touch_session
from agentspace_gateway.storage.usage import Attribution
from agentspace_gateway.storage.usage_totals import ModelUsage

_SELECT = """
    SELECT id, session_key, agent_id, model, created_at, last_active_at, origin_client,
           origin_agent, external_id
    FROM sessions
"""
_DEFAULT_SESSION = (
    _SELECT + "WHERE id = (SELECT default_session_id FROM client_keys WHERE id = ?)"  # noqa: S608
)
_BY_ID = _SELECT + "WHERE id = ?"
_BY_EXTERNAL_ID = _SELECT + "WHERE origin_client = ? AND external_id = ?"


@attrs.frozen
class OriginSession:
    id: str
    agent_id: str
    model: str
    origin_client: int | None
    origin_agent: str | None
    external_id: str | None


class SessionOrigins:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def session_for(
        self,
        *,
        client_key_id: int,
        client_name: str,
        external_id: str | None,
        agent_id: str | None,
        model: str,
    ) -> OriginSession:
        """The client's session under ``external_id`` (its default one when None), created on
        first use and marked active now; one transaction, so two requests racing for a new
        session end up in the same one."""

        async def find_or_create(connection: aiosqlite.Connection) -> sqlite3.Row:
            now = utc_now_iso()
            if external_id is None:
                rows = await connection.execute_fetchall(_DEFAULT_SESSION, (client_key_id,))
            else:
                rows = await connection.execute_fetchall(
                    _BY_EXTERNAL_ID, (client_key_id, external_id)
                )
            row = next(iter(rows), None)
            if row is not None:
                await connection.execute(
                    "UPDATE sessions SET last_active_at = max(last_active_at, ?) WHERE id = ?",
                    (now, row["id"]),
                )
                return row
            session_id: str = nanoid.generate()
            (row,) = await connection.execute_fetchall(
                """
                INSERT INTO sessions (id, session_key, agent_id, model, created_at,
                                      last_active_at, origin_client, origin_agent, external_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                RETURNING id, session_key, agent_id, model, created_at, last_active_at,
                          origin_client, origin_agent, external_id
                """,
                (
                    session_id,
                    session_key_for(client_name, session_id),
                    client_name,
                    model,
                    now,
                    now,
                    client_key_id,
                    agent_id,
                    external_id,
                ),
            )
            if external_id is None:
                await connection.execute(
                    "UPDATE client_keys SET default_session_id = ? WHERE id = ?",
                    (session_id, client_key_id),
                )
            return row

        return _origin_session(await self._db.write(find_or_create))

    async def touch(self, session_id: str) -> None:
        await self._db.write_in_one_trip(lambda raw: touch_session(raw, session_id))

    async def find(self, client_key_id: int, external_id: str) -> OriginSession | None:
        row = await self._db.fetchone(_BY_EXTERNAL_ID, (client_key_id, external_id))
        return None if row is None else _origin_session(row)

    async def get(self, session_id: str) -> OriginSession | None:
        row = await self._db.fetchone(_BY_ID, (session_id,))
        return None if row is None else _origin_session(row)

    async def attribute(self, request_id: str, attribution: Attribution) -> bool:
        """Mark the usage row of ``request_id`` with its client and agents; False if no row."""

        async def update(connection: aiosqlite.Connection) -> bool:
            cursor = await connection.execute(
                """
                UPDATE usage_records SET client_key_id = ?, agent_id = ?, parent_agent_id = ?
                WHERE request_id = ?
                """,
                (
                    attribution.client_key_id,
                    attribution.agent_id,
                    attribution.parent_agent_id,
                    request_id,
                ),
            )
            return cursor.rowcount > 0

        return await self._db.write(update)

    async def origins_of(
        self, session_ids: list[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        """Of these sessions, those opened by a client: (client name, agent, caller's id)."""
        if not session_ids:
            return {}
        marks = ", ".join("?" * len(session_ids))
        rows = await self._db.fetchall(
            f"""
            SELECT sessions.id, client_keys.name, sessions.origin_agent, sessions.external_id
            FROM sessions JOIN client_keys ON client_keys.id = sessions.origin_client
            WHERE sessions.id IN ({marks})
            """,  # noqa: S608 - only placeholders are inlined
            session_ids,
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    async def totals_for_client(
        self,
        client_name: str,
        *,
        session_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, ModelUsage]:
        """Summed usage per model of the requests made with keys of that name (a revoked
        key's and its reissue's alike), optionally for one session and a [since, until)."""
        where = ["client_keys.name = ?"]
        params: list[str] = [client_name]
        for condition, value in (
            ("usage_records.session_id = ?", session_id),
            ("usage_records.created_at >= ?", since),
            ("usage_records.created_at < ?", until),
        ):
            if value is not None:
                where.append(condition)
                params.append(value)
        rows = await self._db.fetchall(
            f"""
            SELECT model, sum(input_tokens), sum(output_tokens),
                   sum(cache_creation_input_tokens), sum(cache_read_input_tokens),
                   sum(cost_nanousd), count(*), sum(priced = 0)
            FROM usage_records JOIN client_keys ON client_keys.id = usage_records.client_key_id
            WHERE {" AND ".join(where)}
            GROUP BY model ORDER BY model
            """,  # noqa: S608 - the conditions are constants
            params,
        )
        return {
            row[0]: ModelUsage(
                model=row[0],
                input_tokens=row[1],
                output_tokens=row[2],
                cache_creation_input_tokens=row[3],
                cache_read_input_tokens=row[4],
                cost_nanousd=row[5],
                request_count=row[6],
                priced=row[7] == 0,
            )
            for row in rows
        }

    async def reported_input_tokens(self, request_id: str) -> int | None:
        """Every input-side token Anthropic reported for the request (None: no row)."""
        row = await self._db.fetchone(
            """
            SELECT input_tokens + cache_creation_input_tokens + cache_read_input_tokens
            FROM usage_records WHERE request_id = ?
            """,
            (request_id,),
        )
        return None if row is None else int(row[0])

    async def attribution_of(self, request_id: str) -> Attribution | None:
        row = await self._db.fetchone(
            """
            SELECT client_key_id, agent_id, parent_agent_id FROM usage_records
            WHERE request_id = ? AND client_key_id IS NOT NULL
            """,
            (request_id,),
        )
        if row is None:
            return None
        return Attribution(row["client_key_id"], row["agent_id"], row["parent_agent_id"])


def _origin_session(row: sqlite3.Row) -> OriginSession:
    return OriginSession(
        id=row["id"],
        agent_id=row["agent_id"],
        model=row["model"],
        origin_client=row["origin_client"],
        origin_agent=row["origin_agent"],
        external_id=row["external_id"],
    )
