"""Which budgets exist, answered from memory until a change is announced.

Every request through every door asks which budgets apply before it goes upstream. Reading
the table each time cost a hop to a database thread on every request (0.18 ms), budgets or
not, for a list that changes only when someone runs ``budgets set`` or ``remove``, most
often from another process (the CLI). So whoever changes the table (``BudgetStore``, in
whichever process) then replaces a small marker file beside the database, and the gateway
reads the table again only when that file's identity has changed since its last read: a
``stat`` per request, no query, and a budget set by the CLI applies from the next request.

The marker only says when to read again. What a reservation checks is read inside its own
write transaction (``storage/budget_reservation.py``), so a list a moment old can at worst
send a request that no budget applies to the long way round, never past a limit.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from agentspace_gateway.storage.budget_model import Budget
from agentspace_gateway.storage.budget_sums import budgets_in
from agentspace_gateway.storage.change_marker import BUDGETS, Seen, marker_path, seen


class BudgetReader:
    """The budgets, read on a read-only connection of its own, beside the write queue (a
    read must not wait behind queued writes), and kept until the marker changes."""

    def __init__(self, connection: aiosqlite.Connection, database: Path) -> None:
        self._connection = connection
        self._marker = marker_path(database, BUDGETS)
        self._listed: list[Budget] | None = None
        self._seen: Seen = None

    @classmethod
    async def open(cls, path: Path) -> BudgetReader:
        return cls(await aiosqlite.connect(f"file:{path}?mode=ro", uri=True), path)

    async def close(self) -> None:
        await self._connection.close()

    def known(self) -> list[Budget] | None:
        """The budgets as last read, if no change has been announced since; else None (then
        ``all`` reads them). A ``stat``, no trip to a thread."""
        if self._listed is None or seen(self._marker) != self._seen:
            return None
        return self._listed

    async def all(self) -> list[Budget]:
        # Looked at before the read: a change that lands during it is seen next time.
        now_seen = seen(self._marker)
        if self._listed is None or now_seen != self._seen:
            self._listed = await budgets_in(self._connection)
            self._seen = now_seen
        return self._listed
