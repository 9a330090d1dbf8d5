"""Usage summed per client, agent or session (usage.query's groupBy), read from the ledger.

The hourly sums have no client or agent columns, so these read usage_records; sum() over
INTEGER columns keeps every cost an exact integer of nano-dollars.
"""

from __future__ import annotations

from typing import Literal

import attrs

from agentspace_gateway.storage.database import Database

Grouping = Literal["client", "agent", "session"]

# Per grouping: the key, the client name shown beside it, and the label (a session's key).
# A request made over the WebSocket gateway has no client key nor agent: its key is NULL.
_KEYS: dict[str, tuple[str, str, str]] = {
    "client": ("client_keys.name", "client_keys.name", "client_keys.name"),
    "agent": ("usage_records.agent_id", "client_keys.name", "usage_records.agent_id"),
    "session": ("usage_records.session_id", "client_keys.name", "sessions.session_key"),
}


@attrs.frozen
class GroupUsage:
    key: str | None
    # The client key's name the requests were made with (None: over the WebSocket gateway).
    client: str | None
    label: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation_1h_input_tokens: int
    cost_nanousd: int
    request_count: int
    priced: bool
    estimated_count: int


class UsageGroups:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def totals(
        self,
        grouping: Grouping,
        *,
        session_id: str | None = None,
        client: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[GroupUsage]:
        """Summed usage per group, most expensive first, optionally for one session, one
        client name (a revoked key's requests and its reissue's alike) and [since, until)."""
        key, client_name, label = _KEYS[grouping]
        where: list[str] = []
        params: list[str] = []
        for condition, value in (
            ("usage_records.session_id = ?", session_id),
            ("client_keys.name = ?", client),
            ("usage_records.created_at >= ?", since),
            ("usage_records.created_at < ?", until),
        ):
            if value is not None:
                where.append(condition)
                params.append(value)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        # An agent id is the caller's own, so one is told apart per client as well.
        group = f"{key}, {client_name}" if grouping == "agent" else key
        rows = await self._db.fetchall(
            f"""
            SELECT {key}, max({client_name}), max({label}),
                   sum(usage_records.input_tokens), sum(usage_records.output_tokens),
                   sum(usage_records.cache_creation_input_tokens),
                   sum(usage_records.cache_read_input_tokens),
                   sum(usage_records.cache_creation_1h_input_tokens),
                   sum(usage_records.cost_nanousd), count(*), sum(usage_records.priced = 0),
                   sum(usage_records.output_estimated)
            FROM usage_records
            LEFT JOIN client_keys ON client_keys.id = usage_records.client_key_id
            LEFT JOIN sessions ON sessions.id = usage_records.session_id
            {clause}
            GROUP BY {group}
            ORDER BY sum(usage_records.cost_nanousd) DESC, {key}
            """,  # noqa: S608 - the columns and conditions are constants
            params,
        )
        return [
            GroupUsage(
                key=row[0],
                client=row[1],
                label=row[2],
                input_tokens=row[3] or 0,
                output_tokens=row[4] or 0,
                cache_creation_input_tokens=row[5] or 0,
                cache_read_input_tokens=row[6] or 0,
                cache_creation_1h_input_tokens=row[7] or 0,
                cost_nanousd=row[8] or 0,
                request_count=row[9],
                priced=(row[10] or 0) == 0,
                estimated_count=row[11] or 0,
            )
            for row in rows
        ]
