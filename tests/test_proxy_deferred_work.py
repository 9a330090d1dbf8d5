"""Work the doors hold until a reply's first byte (the key use's audit row, the session's
activity mark, the kept request body) is still done on every way out, and the key look-up
on the event loop thread still answers when SQLite says busy."""

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import make_mocked_request

from agentspace_gateway.client_auth.attribution import SessionCache
from agentspace_gateway.client_auth.audit_events import ClientEvent
from agentspace_gateway.client_auth.keys import ClientAuth
from agentspace_gateway.failed_auth import FailedAuthLimiter
from agentspace_gateway.home import Home
from agentspace_gateway.storage.audit_log import AuditLog
from agentspace_gateway.storage.client_keys import (
    ClientKeyReader,
    ClientKeyRepository,
    key_sha256,
)
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.session_origins import SessionOrigins

from fake_anthropic import FakeAnthropic, Scenario
from processes import free_port
from proxy_helpers import (
    MODEL,
    Proxied,
    audit_events,
    issue,
    kept_files,
    proxied_gateway,
    proxy_config,
)

BODY: Any = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
USED = ("client.use", "client laptop; POST /v1/messages")


async def test_a_streamed_reply_has_its_use_audited_and_its_body_kept(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    proxied.fake.enqueue(
        Scenario(text_chunks=["Hello", " there."], input_tokens=10, output_tokens=2)
    )
    async with (
        anthropic.AsyncAnthropic(
            api_key=proxied.key.secret, base_url=proxied.base_url, max_retries=0
        ) as client,
        client.messages.stream(**BODY) as stream,
    ):
        text = await stream.get_final_text()
    assert text == "Hello there."
    assert (await audit_events(proxied)).count(USED) == 1
    assert len(await kept_files(proxied)) == 1


async def test_a_request_refused_before_dispatch_still_has_its_use_audited(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    response = await proxied.client.post(
        "/v1/messages",
        data=b"{not json",
        headers={"x-api-key": proxied.key.secret, "anthropic-version": "2023-06-01"},
    )
    assert response.status == 400
    assert (await audit_events(proxied)).count(USED) == 1
    assert await kept_files(proxied) == []  # nothing was sent upstream, nothing to keep


async def test_a_request_upstream_never_answered_still_has_its_body_kept_and_use_audited(
    make_client: Any, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-for-nobody")
    client = await make_client(proxy_config(f"http://127.0.0.1:{free_port()}"))
    key = await issue(client, "laptop")
    proxied = Proxied(client, None, key, home)  # type: ignore[arg-type]
    response = await client.post(
        "/v1/messages",
        json=BODY,
        headers={"x-api-key": key.secret, "anthropic-version": "2023-06-01"},
    )
    assert response.status >= 500
    assert (await audit_events(proxied)).count(USED) == 1
    (kept,) = await kept_files(proxied)
    assert kept.stat().st_mode & 0o777 == 0o600


class CountedOrigins(SessionOrigins):
    """Real storage, each mark counted; the first mark waits until the test lets it go."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.marks = 0
        self.release = asyncio.Event()

    async def touch(self, session_id: str) -> None:
        self.marks += 1
        if self.marks == 1:
            await self.release.wait()
        await super().touch(session_id)


async def test_session_marks_made_while_one_is_written_become_one_more(db: Database) -> None:
    client = (await ClientKeyRepository(db).issue("laptop")).client
    origins = CountedOrigins(db)
    cache = SessionCache(origins)
    session = await cache.session_for(client, None, None, MODEL)  # found: no mark yet
    assert origins.marks == 0
    for _ in range(20):
        await cache.session_for(client, None, None, MODEL)
        await asyncio.sleep(0)
    assert origins.marks == 1  # the first is being written; the other 19 wait as one
    (before,) = await db.fetchall("SELECT last_active_at FROM sessions WHERE id = ?", (session.id,))
    origins.release.set()
    await cache.flush()
    assert origins.marks == 2
    (after,) = await db.fetchall("SELECT last_active_at FROM sessions WHERE id = ?", (session.id,))
    assert after[0] > before[0]
    await cache.session_for(client, None, None, MODEL)
    await cache.flush()
    assert origins.marks == 3  # nothing in progress: a mark of its own


async def test_the_key_look_up_waits_off_the_loop_when_sqlite_says_busy(tmp_path: Path) -> None:
    # A rollback-journal database (the gateway's is WAL, where this is rare): a writer's
    # exclusive lock keeps readers out, so the loop-thread read is answered busy at once and
    # the look-up must wait for the lock on the threaded connection instead of failing.
    path = tmp_path / "keys.db"
    secret = "asg_" + "k" * 43
    with sqlite3.connect(path) as setup:
        setup.execute(
            "CREATE TABLE client_keys (id INTEGER PRIMARY KEY, name TEXT, key_sha256 TEXT,"
            " key_prefix TEXT, created_at TEXT, expires_at TEXT, revoked_at TEXT,"
            " default_session_id TEXT)"
        )
        setup.execute(
            "INSERT INTO client_keys (name, key_sha256, key_prefix, created_at)"
            " VALUES ('laptop', ?, 'asg_kkkkkk', '2026-12-06T00:00:00.000Z')",
            (key_sha256(secret),),
        )
    reader = await ClientKeyReader.open(path)
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE client_keys SET revoked_at = '2026-12-06T00:00:01.000Z'")
        threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
        found = await reader.find_by_secret(secret)
    finally:
        await reader.close()
        await asyncio.sleep(0.1)
        holder.close()
    assert found is not None
    # Read after the writer's commit, as any look-up that starts after a revocation must be.
    assert found.revoked_at == "2026-12-06T00:00:01.000Z"


async def test_key_uses_audited_together_all_land_in_order(db: Database) -> None:
    # Fifty uses in one turn of the loop, while the first write is still in progress: every
    # row is written, each as it came.
    log = AuditLog(db)
    reader = await ClientKeyReader.open(db.path)
    auth = ClientAuth(reader, log, FailedAuthLimiter(5, 60.0))
    try:
        for number in range(50):
            request = make_mocked_request("POST", f"/v1/messages?n={number}")
            auth.audit(ClientEvent.USE, request, f"client bench {number}")
            if number == 10:
                await asyncio.sleep(0)  # the writer starts with the first eleven
        await auth.flush()
    finally:
        await reader.close()
    rows = list(reversed(await log.recent(limit=100)))
    assert [row.detail for row in rows] == [
        f"client bench {n}; POST /v1/messages" for n in range(50)
    ]
    assert all(row.event == ClientEvent.USE.value for row in rows)
