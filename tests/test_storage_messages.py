"""MessageRepository: a session's messages in order, and the session's activity with them."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from agentspace_gateway.clock import format_utc
from agentspace_gateway.storage import (
    Database,
    MessageRepository,
    MessageRow,
    SessionRepository,
    SessionRow,
)
from agentspace_gateway.storage import messages as messages_module
from agentspace_gateway.storage import sessions as sessions_module

from storage_helpers import SteppingClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    stepping = SteppingClock()
    monkeypatch.setattr(sessions_module, "utc_now_iso", stepping)
    monkeypatch.setattr(messages_module, "utc_now_iso", stepping)
    return stepping


@pytest.fixture
def messages(db: Database) -> MessageRepository:
    return MessageRepository(db)


@pytest.fixture
async def session(db: Database) -> SessionRow:
    return await SessionRepository(db).create(agent_id="main", model="m")


async def message_count(db: Database) -> int:
    row = await db.fetchone("SELECT count(*) FROM messages")
    assert row is not None
    count: int = row[0]
    return count


async def test_messages_round_trip_oldest_first(
    messages: MessageRepository, session: SessionRow, db: Database
) -> None:
    other = await SessionRepository(db).create(agent_id="main", model="m")
    system = await messages.add(session.id, "system", "Be brief.")
    await messages.add(other.id, "user", "elsewhere")
    user = await messages.add(session.id, "user", "Hello", token_count=2)
    assistant = await messages.add(session.id, "assistant", "Hi!", token_count=0)

    assert await messages.recent_for_session(session.id, limit=100) == [system, user, assistant]
    assert user == MessageRow(
        id=user.id,
        session_id=session.id,
        role="user",
        content="Hello",
        created_at=user.created_at,
        token_count=2,
    )
    assert system.token_count is None
    assert await messages.count_for_session(session.id) == 3
    assert await messages.count_for_session(other.id) == 1
    assert await messages.count_for_session("no-such-session") == 0
    assert await messages.recent_for_session("no-such-session", limit=100) == []


async def test_adding_a_message_marks_the_session_active(
    messages: MessageRepository, db: Database, clock: SteppingClock
) -> None:
    sessions = SessionRepository(db)
    session = await sessions.create(agent_id="main", model="m")

    message = await messages.add(session.id, "user", "Hello")

    touched = await sessions.get(session.id)
    assert touched is not None
    assert touched.last_active_at == format_utc(clock.moment)
    assert touched.last_active_at > message.created_at > session.created_at


async def test_a_message_for_an_unknown_session_is_refused(
    messages: MessageRepository, db: Database
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await messages.add("no-such-session", "user", "Hello")
    assert await message_count(db) == 0


async def test_the_message_and_the_activity_land_together(
    messages: MessageRepository, session: SessionRow, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def touch_fails(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(messages_module, "touch_session", touch_fails)

    with pytest.raises(sqlite3.OperationalError):
        await messages.add(session.id, "user", "Hello")
    assert await message_count(db) == 0


async def test_an_invalid_role_is_rejected(
    messages: MessageRepository, session: SessionRow
) -> None:
    with pytest.raises(ValueError, match="Invalid role 'robot'"):
        await messages.add(session.id, "robot", "beep")  # type: ignore[arg-type]
    assert await messages.count_for_session(session.id) == 0


async def test_a_negative_token_count_is_rejected(
    messages: MessageRepository, session: SessionRow
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        await messages.add(session.id, "user", "Hello", token_count=-1)
    assert await messages.count_for_session(session.id) == 0


async def test_concurrent_adds_all_land(messages: MessageRepository, session: SessionRow) -> None:
    added = await asyncio.gather(
        *(messages.add(session.id, "user", f"message {n}") for n in range(50))
    )

    stored = await messages.recent_for_session(session.id, limit=100)
    assert sorted(stored, key=lambda row: row.id) == sorted(added, key=lambda row: row.id)
    assert await messages.count_for_session(session.id) == 50
