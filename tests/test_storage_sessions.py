"""SessionRepository: keys, lookups, the recent list and activity."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from agentspace_gateway.clock import format_utc
from agentspace_gateway.storage import (
    Database,
    MessageRepository,
    SessionRepository,
    SessionRow,
)
from agentspace_gateway.storage import sessions as sessions_module

from storage_helpers import SteppingClock

SESSION_KEY = re.compile(r"^agent:(?P<agent>[A-Za-z0-9_-]+):(?P<id>[A-Za-z0-9_-]{21})$")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    stepping = SteppingClock()
    monkeypatch.setattr(sessions_module, "utc_now_iso", stepping)
    return stepping


@pytest.fixture
def sessions(db: Database) -> SessionRepository:
    return SessionRepository(db)


async def test_create_makes_an_agent_session_key(sessions: SessionRepository) -> None:
    row = await sessions.create(agent_id="main", model="claude-sonnet-4-5")

    match = SESSION_KEY.match(row.session_key)
    assert match is not None
    assert match["agent"] == "main"
    assert match["id"] == row.id
    assert len(row.id) == 21
    assert row.agent_id == "main"
    assert row.model == "claude-sonnet-4-5"
    assert row.created_at == row.last_active_at


async def test_session_ids_are_unique(sessions: SessionRepository) -> None:
    rows = [await sessions.create(agent_id="main", model="m") for _ in range(20)]
    assert len({row.id for row in rows}) == 20


@pytest.mark.parametrize("agent_id", ["a", "A-b_9", "x" * 64])
async def test_valid_agent_ids_are_accepted(sessions: SessionRepository, agent_id: str) -> None:
    row = await sessions.create(agent_id=agent_id, model="m")
    assert row.session_key == f"agent:{agent_id}:{row.id}"


@pytest.mark.parametrize(
    "agent_id",
    ["", "x" * 65, "has space", "colon:inside", "dot.ted", "ünïcode", "main\n", "a/b"],
)
async def test_invalid_agent_ids_are_rejected(sessions: SessionRepository, agent_id: str) -> None:
    with pytest.raises(ValueError, match="Invalid agent id"):
        await sessions.create(agent_id=agent_id, model="m")
    assert await sessions.list_recent() == []


async def test_get_and_get_by_key_round_trip(sessions: SessionRepository) -> None:
    created = await sessions.create(agent_id="main", model="m")
    await sessions.create(agent_id="other", model="m")

    assert await sessions.get(created.id) == created
    assert await sessions.get_by_key(created.session_key) == created
    assert await sessions.get("no-such-id") is None
    assert await sessions.get_by_key("agent:main:no-such-id") is None


@pytest.mark.usefixtures("clock")
async def test_list_recent_is_most_recently_active_first(sessions: SessionRepository) -> None:
    first = await sessions.create(agent_id="main", model="m")
    second = await sessions.create(agent_id="main", model="m")
    third = await sessions.create(agent_id="main", model="m")
    await sessions.touch(first.id)

    recent = await sessions.list_recent()

    assert [row.id for row in recent] == [first.id, third.id, second.id]
    assert recent[0].last_active_at > recent[0].created_at


@pytest.mark.usefixtures("clock")
async def test_list_recent_pages(sessions: SessionRepository) -> None:
    created = [await sessions.create(agent_id="main", model="m") for _ in range(5)]
    newest_first = [row.id for row in reversed(created)]

    assert [row.id for row in await sessions.list_recent(limit=2)] == newest_first[:2]
    assert [row.id for row in await sessions.list_recent(limit=2, offset=2)] == newest_first[2:4]
    assert [row.id for row in await sessions.list_recent(limit=2, offset=4)] == newest_first[4:]
    assert await sessions.list_recent(limit=0) == []
    with pytest.raises(ValueError, match="must be >= 0"):
        await sessions.list_recent(offset=-1)


async def test_counts_come_in_pages_that_continue_after_a_session(
    sessions: SessionRepository, db: Database, clock: SteppingClock
) -> None:
    created = [await sessions.create(agent_id="main", model="m") for _ in range(5)]
    messages = MessageRepository(db)
    for count, row in enumerate(created):
        for _ in range(count):
            await messages.add(row.id, "user", "hello")
    # Same activity time for the two newest: the id decides between them.
    clock.step = timedelta(0)
    await sessions.touch(created[3].id)
    await sessions.touch(created[4].id)
    everything = await sessions.list_with_message_counts()

    first = await sessions.list_with_message_counts(limit=2)
    second = await sessions.list_with_message_counts(limit=2, after=first[-1][0].id)
    rest = await sessions.list_with_message_counts(limit=2, after=second[-1][0].id)

    assert [(row.id, count) for row, count in everything][:2] == [
        (row.id, count) for row, count in first
    ]
    assert first + second + rest == everything
    assert len(rest) == 1
    assert sorted(count for _, count in everything) == [0, 1, 2, 3, 4]
    assert await sessions.list_with_message_counts(limit=2, after="no-such-id") == []
    assert await sessions.list_with_message_counts(limit=0) == []
    with pytest.raises(ValueError, match="must be >= 0"):
        await sessions.list_with_message_counts(limit=-1)


async def test_touch_updates_only_last_active_at(
    sessions: SessionRepository, clock: SteppingClock
) -> None:
    created = await sessions.create(agent_id="main", model="m")

    await sessions.touch(created.id)

    touched = await sessions.get(created.id)
    assert touched == SessionRow(
        id=created.id,
        session_key=created.session_key,
        agent_id="main",
        model="m",
        created_at=created.created_at,
        last_active_at=format_utc(clock.moment),
    )
    assert touched.last_active_at > created.last_active_at


async def test_touch_never_moves_activity_back_in_time(
    sessions: SessionRepository, clock: SteppingClock
) -> None:
    created = await sessions.create(agent_id="main", model="m")
    clock.moment -= timedelta(hours=1)

    await sessions.touch(created.id)

    assert await sessions.get(created.id) == created


async def test_touching_an_unknown_session_is_an_error(sessions: SessionRepository) -> None:
    with pytest.raises(LookupError, match="no-such-id"):
        await sessions.touch("no-such-id")
