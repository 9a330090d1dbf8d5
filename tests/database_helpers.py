"""A write that holds the database's connection, for tests of what queues behind it."""

from __future__ import annotations

import asyncio

import aiosqlite

from agentspace_gateway.storage import Database

NOW = "2026-11-28T09:00:00.000Z"
INSERT_AUDIT = "INSERT INTO audit_log (event, created_at) VALUES (?, ?)"


class HeldWrite:
    """A write (the usual, awaiting kind) that keeps the connection busy until released, so
    the next ones queue up; it then inserts one audit row, ``event``."""

    def __init__(self, db: Database, event: str = "slow") -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

        async def slow(connection: aiosqlite.Connection) -> None:
            self.started.set()
            await self.release.wait()
            await connection.execute(INSERT_AUDIT, (event, NOW))

        self.done = asyncio.ensure_future(db.write(slow))

    async def __aenter__(self) -> HeldWrite:
        await self.started.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await self.done
