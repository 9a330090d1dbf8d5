"""SIGKILL in the middle of streaming chats, again and again: nothing acknowledged is lost.

Each round starts ``serve`` on the same home, lets several clients stream chats (continuing
their sessions across restarts), kills the process with SIGKILL while replies are streaming,
and checks the database it left: sound, fully migrated, every reply whose chat.stream.end
reached its client stored complete with its usage, and no usage row twice.

The default run kills it KILL_ROUNDS times; ``tox -e reliability`` sets
RELIABILITY_KILL_ROUNDS=20.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from agentspace_gateway.storage import Database, migration_status

from fake_anthropic import Scenario
from reliability_helpers import (
    Gateway,
    StreamRecord,
    db_rows,
    exchange_rows,
    gateway_running,
    integrity,
    run_cli,
    stream_chat,
    wait_for_exit,
)

KILL_ROUNDS = int(os.environ.get("RELIABILITY_KILL_ROUNDS", "5"))
CLIENTS = 4
NANO = 1_000_000_000
OPEN_ROWS = "SELECT id FROM usage_records WHERE stop_reason = 'in_progress'"


async def chat_until_killed(
    url: str, name: str, round_number: int, session: dict[str, str], records: list[StreamRecord]
) -> None:
    """One client: chat in its session, one chat.send after another, until the server dies."""
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            for n in range(1000):
                record = StreamRecord(f"{name}-{n}", f"{name} round {round_number} message {n}")
                records.append(record)
                fields = {"sessionId": session["id"]} if "id" in session else {}
                await stream_chat(ws, record, **fields)
                if record.end is None:
                    return
                session["id"] = record.session_id or session.get("id", "")


def mid_stream(records: list[StreamRecord]) -> bool:
    return any(r.started and r.text and r.end is None and r.error is None for r in records)


async def pending_migrations(database_path: Path) -> list[str]:
    database = await Database.open(database_path)
    try:
        return (await migration_status(database)).pending
    finally:
        await database.close()


def check_database(database: Path, records: list[StreamRecord]) -> dict[str, int]:
    """Everything the clients were told happened is in the database, and nothing twice."""
    assert integrity(database) == ["ok"]
    completed = [r for r in records if r.end is not None]
    started = [r for r in records if r.started]
    for record in completed:
        stored = exchange_rows(database, record.content)
        [reply] = stored["replies"]
        assert (reply["content"], reply["complete"]) == (record.text, 1)
        [usage] = stored["usage"]
        end = record.end
        assert end is not None
        assert usage["input_tokens"] == end["usage"]["inputTokens"]
        assert usage["output_tokens"] == end["usage"]["outputTokens"]
        assert usage["cost_nanousd"] == round(end["cost"]["totalCost"] * NANO)
    for record in started:
        # The user message was stored before chat.stream.start was sent.
        stored = exchange_rows(database, record.content)
        assert len(stored["replies"]) <= 1
        assert len(stored["usage"]) <= 1
    duplicates = db_rows(
        database,
        "SELECT request_id, count(*) FROM usage_records GROUP BY request_id HAVING count(*) > 1",
    )
    assert duplicates == []
    [[usage_rows, unlinked]] = db_rows(
        database,
        """SELECT count(*), count(*) FILTER (WHERE request_id IS NULL OR request_id NOT IN
               (SELECT request_id FROM messages WHERE role = 'user')) FROM usage_records""",
    )
    assert unlinked == 0
    assert len(completed) <= usage_rows <= len(started)
    orphans = db_rows(
        database,
        """SELECT id FROM messages WHERE role = 'assistant' AND request_id NOT IN
               (SELECT request_id FROM messages WHERE role = 'user')""",
    )
    assert orphans == []
    return {"completed": len(completed), "started": len(started), "usage_rows": usage_rows}


async def kill_mid_stream(
    gateway: Gateway, round_number: int, sessions: list[dict[str, str]]
) -> list[StreamRecord]:
    """Let the clients chat until some replies have ended and one is streaming; SIGKILL."""
    records: list[StreamRecord] = []
    clients = [
        asyncio.create_task(
            chat_until_killed(gateway.url, f"c{n}", round_number, sessions[n], records)
        )
        for n in range(CLIENTS)
    ]
    # Some replies finish first, so that every round also checks acknowledged ones.
    deadline = time.monotonic() + 20
    while sum(r.end is not None for r in records) < CLIENTS or not mid_stream(records):
        assert time.monotonic() < deadline, ([r.frames[-2:] for r in records], gateway.output())
        await asyncio.sleep(0.002)
    await asyncio.sleep(random.Random(round_number).uniform(0, 0.1))
    gateway.process.send_signal(signal.SIGKILL)
    assert await wait_for_exit(gateway) == -signal.SIGKILL
    await asyncio.wait_for(asyncio.gather(*clients), 20)
    assert any(r.started and r.end is None for r in records), "killed between streams"
    return records


@pytest.mark.timeout(60 + 15 * KILL_ROUNDS)
async def test_sigkill_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    fake.default = Scenario(text_chunks=["tok "] * 20, delay_between_chunks=0.005)
    home = tmp_path / "home"
    database = home / "agentspace.db"
    records: list[StreamRecord] = []
    sessions: list[dict[str, str]] = [{} for _ in range(CLIENTS)]
    began = time.monotonic()

    for round_number in range(KILL_ROUNDS):
        async with gateway_running(home, tmp_path, base_url, f"serve-{round_number}") as gateway:
            # Started over the killed one's runtime.json and database.
            assert json.loads((home / "runtime.json").read_text())["pid"] == gateway.process.pid
            assert await pending_migrations(database) == []
            # Rows the last kill left open were closed at startup, their tokens kept.
            assert db_rows(database, OPEN_ROWS) == []
            records += await kill_mid_stream(gateway, round_number, sessions)
        check_database(database, records)

    async with gateway_running(home, tmp_path, base_url, "serve-final") as gateway:
        status = await asyncio.to_thread(run_cli, home, tmp_path, "migrate", "--status")
        # Every session goes on where it was.
        async with aiohttp.ClientSession() as http, http.ws_connect(gateway.url) as ws:
            for n, session in enumerate(sessions):
                record = StreamRecord(f"after-{n}", f"c{n} after the last kill")
                records.append(await stream_chat(ws, record, sessionId=session["id"]))
                assert record.end is not None
                assert record.session_id == session["id"]
        assert db_rows(database, OPEN_ROWS) == []
        gateway.process.send_signal(signal.SIGTERM)
        assert await wait_for_exit(gateway) == 0, gateway.output()
    figures = check_database(database, records)
    took = time.monotonic() - began
    interrupted = db_rows(
        database, "SELECT input_tokens FROM usage_records WHERE stop_reason = 'interrupted'"
    )
    # Streams cut by a kill after they started upstream kept what Anthropic had reported.
    assert interrupted
    assert all(tokens > 0 for [tokens] in interrupted)

    assert status.returncode == 0, status.stderr
    assert "applied  0001_initial" in status.stdout
    assert "pending" not in status.stdout
    print(
        f"\n{KILL_ROUNDS} SIGKILLs survived in {took:.1f} s: {figures['started']} streams "
        f"started, {figures['completed']} completed, {figures['usage_rows']} usage rows "
        f"({len(interrupted)} of them interrupted by a kill)"
    )
