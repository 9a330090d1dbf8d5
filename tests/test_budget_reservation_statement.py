"""The one-statement reservation decides exactly as the budgets' standings say.

``BudgetStore.reserve_at_once`` sums spend and open reservations in SQL of its own; these
tests hold it to the sums ``standings`` (the long way, which ``reserve`` checks with) reads,
over budgets of every scope and period, usage in and out of the period, unpriced rows and
open reservations with and without their usage rows, in zones on whole and half hours.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from agentspace_gateway.clock import format_utc
from agentspace_gateway.storage import Database, SessionRepository, apply_migrations
from agentspace_gateway.storage.budgets import BudgetStore, Reservation, Scope
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracyReader

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AGENTS = ("a1", "a2")

_budget = st.tuples(
    st.sampled_from(("client", "session", "agent", "global")),
    st.integers(0, 1),
    st.sampled_from(("day", "month", "total")),
    st.integers(0, 20_000),
)
# session, client (or none), agent (or none), cost, priced, hours before NOW (after, if
# negative), actual input
_usage = st.tuples(
    st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.integers(0, 800),
    st.booleans(),
    st.integers(-24 * 40, 24 * 45),
    st.integers(1, 300),
)
# scope of an open reservation (as for _usage), its amount, and its usage row's cost if any
_open = st.tuples(
    st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.integers(0, 900),
    st.none() | st.integers(0, 1000),
)
_request = st.tuples(
    st.integers(0, 1) | st.none(),
    st.integers(0, 1) | st.none(),
    st.integers(0, 1) | st.none(),
    st.integers(0, 3000),
)


class World:
    def __init__(self, db: Database, sessions: list[str], clients: list[int]) -> None:
        self.db = db
        self.sessions = sessions
        self.clients = clients

    async def usage(
        self,
        who: tuple[int, int | None, int | None],
        request_id: str,
        cost: int,
        *,
        priced: bool = True,
        at: datetime = NOW,
        actual_input: int = 100,
    ) -> None:
        session, client, agent = who
        values = (
            self.sessions[session],
            actual_input,
            cost,
            format_utc(at),
            request_id,
            int(priced),
            None if client is None else self.clients[client],
            None if agent is None else AGENTS[agent],
        )
        await self.db.write(
            lambda c: c.execute(
                "INSERT INTO usage_records (session_id, model, input_tokens, cost_nanousd,"
                " created_at, request_id, priced, estimated_input_tokens, client_key_id,"
                " agent_id) VALUES (?, 'm', ?, ?, ?, ?, ?, 100, ?, ?)",
                values,
            )
        )

    async def reservation(
        self, who: tuple[int, int | None, int | None], request_id: str, amount: int
    ) -> None:
        session, client, agent = who
        values = (
            request_id,
            self.sessions[session],
            None if client is None else self.clients[client],
            None if agent is None else AGENTS[agent],
            amount,
            format_utc(NOW),
        )
        await self.db.write(
            lambda c: c.execute(
                "INSERT INTO budget_reservations (request_id, session_id, client_key_id,"
                " agent_id, model, amount_nanousd, state, created_at)"
                " VALUES (?, ?, ?, ?, 'm', ?, 'open', ?)",
                values,
            )
        )


async def world_in(home: Path) -> World:
    db = await Database.open(home / "agentspace.db")
    await apply_migrations(db)
    repository = SessionRepository(db)
    sessions = [(await repository.create(agent_id="main", model="m")).id for _ in range(2)]
    keys = ClientKeyRepository(db)
    clients = [(await keys.issue(name)).client.id for name in ("one", "two")]
    return World(db, sessions, clients)


async def measured_ratio(db: Database) -> float | None:
    spread = (await EstimateAccuracyReader(db).for_model("m")).spread()
    return None if spread is None else spread.maximum


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(("UTC", "America/New_York", "Asia/Kolkata")),
    budgets=st.lists(_budget, max_size=5),
    usage=st.lists(_usage, max_size=12),
    held=st.lists(_open, max_size=5),
    request=_request,
)
def test_it_reserves_exactly_what_the_tightest_applying_budget_has_room_for(
    zone: str,
    budgets: list[tuple[str, int, str, int]],
    usage: list[tuple[int, int | None, int | None, int, bool, int, int]],
    held: list[tuple[int, int | None, int | None, int, int | None]],
    request: tuple[int | None, int | None, int | None, int],
) -> None:
    async def run(home: Path) -> None:
        world = await world_in(home)
        try:
            store = BudgetStore(world.db, ZoneInfo(zone))
            for kind, which, period, limit in budgets:
                scope_id = {
                    "client": str(world.clients[which]),
                    "session": world.sessions[which],
                    "agent": AGENTS[which],
                    "global": "",
                }[kind]
                await store.set(kind, scope_id, period, limit)
            for index, (s, c, a, cost, priced, hours, actual) in enumerate(usage):
                at = NOW - timedelta(hours=hours, minutes=index)
                await world.usage(
                    (s, c, a), f"u{index}", cost, priced=priced, at=at, actual_input=actual
                )
            for index, (s, c, a, amount, billed) in enumerate(held):
                await world.reservation((s, c, a), f"h{index}", amount)
                if billed is not None:
                    await world.usage((s, c, a), f"h{index}", billed)
            session, client, agent = request[:3]
            scope = Scope(
                session_id=None if session is None else world.sessions[session],
                client_key_id=None if client is None else world.clients[client],
                agent_id=None if agent is None else AGENTS[agent],
            )
            applying = [s for s in await store.standings(NOW) if scope.matches(s.budget)]
            # What a settle checks the alert thresholds against, read as one statement.
            assert await store.standings_of(scope, NOW) == applying
            ratio = await measured_ratio(world.db)
            if ratio is not None:  # priced with a ratio no longer measured: never reserved
                stale = await store.reserve_at_once(scope, "r0", "m", 0, NOW, ratio * 2)
                assert stale is None
            if not applying:
                assert await store.reserve_at_once(scope, "r1", "m", request[3], NOW, ratio) is None
                return
            # At the edge: one nano-dollar more than the tightest budget's room, then all of it.
            room = min(s.remaining_nanousd for s in applying)
            assert await store.reserve_at_once(scope, "r1", "m", room + 1, NOW, ratio) is None
            result = await store.reserve_at_once(scope, "r2", "m", room, NOW, ratio)

            assert result == Reservation("r2", room)
            after = await store.standings_of(scope, NOW)
            assert [s.reserved_nanousd for s in after] == [
                s.reserved_nanousd + room for s in applying
            ]
        finally:
            await world.db.close()

    with tempfile.TemporaryDirectory() as home:
        asyncio.run(run(Path(home)))


async def test_a_budget_the_request_does_not_fit_is_seen_though_another_has_room(
    db: Database,
) -> None:
    store = BudgetStore(db, ZoneInfo("UTC"))
    session = (await SessionRepository(db).create(agent_id="main", model="m")).id
    await store.set("global", "", "total", 10_000)
    await store.set("session", session, "day", 50)

    assert await store.reserve_at_once(Scope(session_id=session), "r1", "m", 51, NOW, None) is None
    assert await store.reserve_at_once(Scope(session_id=session), "r2", "m", 50, NOW, None) == (
        Reservation("r2", 50)
    )
    assert await store.reserve_at_once(Scope(session_id=session), "r3", "m", 1, NOW, None) is None
    assert await store.reserve_at_once(Scope(), "r4", "m", 9_950, NOW, None) == (
        Reservation("r4", 9_950)
    )
