"""AuditLog: what happened, newest first, with outside text capped."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from agentspace_gateway.clock import format_utc
from agentspace_gateway.storage import AuditEntry, AuditLog, Database
from agentspace_gateway.storage import audit_log as audit_log_module

from storage_helpers import SteppingClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    stepping = SteppingClock()
    monkeypatch.setattr(audit_log_module, "utc_now_iso", stepping)
    return stepping


@pytest.fixture
def audit(db: Database) -> AuditLog:
    return AuditLog(db)


async def test_an_entry_round_trips(audit: AuditLog, clock: SteppingClock) -> None:
    entry = await audit.record(
        "key.access",
        provider="anthropic",
        remote_addr="127.0.0.1",
        user_agent="agentspace-gateway/0.1.0",
        detail="served to the gateway",
    )

    assert entry == AuditEntry(
        id=entry.id,
        event="key.access",
        provider="anthropic",
        remote_addr="127.0.0.1",
        user_agent="agentspace-gateway/0.1.0",
        detail="served to the gateway",
        created_at=format_utc(clock.moment),
    )
    assert await audit.recent() == [entry]


async def test_optional_fields_stay_empty(audit: AuditLog) -> None:
    entry = await audit.record("token.show")
    assert (entry.provider, entry.remote_addr, entry.user_agent, entry.detail) == (None,) * 4


@pytest.mark.usefixtures("clock")
async def test_recent_is_newest_first_and_limited(audit: AuditLog) -> None:
    for n in range(5):
        await audit.record(f"event.{n}")

    assert [e.event for e in await audit.recent()] == [f"event.{n}" for n in (4, 3, 2, 1, 0)]
    assert [e.event for e in await audit.recent(limit=2)] == ["event.4", "event.3"]
    assert await audit.recent(limit=0) == []
    with pytest.raises(ValueError, match="limit must be >= 0"):
        await audit.recent(limit=-1)


async def test_entries_in_the_same_millisecond_keep_their_order(
    audit: AuditLog, clock: SteppingClock
) -> None:
    clock.step = timedelta(0)
    for n in range(3):
        await audit.record(f"event.{n}")

    assert [e.event for e in await audit.recent()] == ["event.2", "event.1", "event.0"]


@pytest.mark.usefixtures("clock")
async def test_recent_filters_by_provider(audit: AuditLog) -> None:
    await audit.record("key.add", provider="anthropic")
    await audit.record("key.add", provider="openai")
    await audit.record("token.show")
    await audit.record("key.access", provider="anthropic")
    await audit.record("key.remove", provider="anthropic")

    anthropic = await audit.recent(provider="anthropic")
    assert [e.event for e in anthropic] == ["key.remove", "key.access", "key.add"]
    assert {e.provider for e in anthropic} == {"anthropic"}
    assert [e.event for e in await audit.recent(provider="anthropic", limit=1)] == ["key.remove"]
    assert [e.event for e in await audit.recent(provider="openai")] == ["key.add"]
    assert await audit.recent(provider="nobody") == []
    assert len(await audit.recent()) == 5


async def test_user_agent_and_detail_are_truncated(audit: AuditLog) -> None:
    entry = await audit.record("access.denied", user_agent="u" * 600, detail="d" * 2000)

    assert entry.user_agent == "u" * 512
    assert entry.detail == "d" * 1024
    assert await audit.recent() == [entry]


async def test_text_at_the_limits_is_kept_whole(audit: AuditLog) -> None:
    entry = await audit.record("access.denied", user_agent="é" * 512, detail="€" * 1024)

    assert entry.user_agent == "é" * 512
    assert entry.detail == "€" * 1024


async def test_an_empty_event_is_refused(audit: AuditLog) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        await audit.record("")
    assert await audit.recent() == []


async def test_events_written_together_keep_their_order_times_and_caps(
    audit: AuditLog, clock: SteppingClock
) -> None:
    # Made one after another (a millisecond apart), written later in one write.
    events = [
        audit_log_module.AuditEvent("client.use", remote_addr="127.0.0.1", detail=f"use {n}")
        for n in range(3)
    ]
    events.append(audit_log_module.AuditEvent("client.refused", user_agent="u" * 5000))
    made = [event.created_at for event in events]
    clock.step = timedelta(hours=1)  # the write comes much later
    await audit.record_all(events)
    rows = list(reversed(await audit.recent(limit=10)))
    assert [row.detail for row in rows] == ["use 0", "use 1", "use 2", None]
    assert [row.created_at for row in rows] == made
    assert rows[-1].user_agent == "u" * audit_log_module.USER_AGENT_MAX_CHARS
