"""Usage is dated when its stream starts, and every report reads that date.

A reply that starts before midnight UTC and ends after it counts in the day it started, in
usage.query over one session (the ledger) and over all (the hourly sums), and the ledger's
row keeps its start time when it is settled.
"""

import pytest

from agentspace_gateway.home import Home
from agentspace_gateway.storage import messages as stored_messages
from agentspace_gateway.storage import usage as stored_usage

from chat_helpers import closed_usage_rows, deltas, eventually, query, until_end, usage_rows
from fake_anthropic import Scenario
from wsclient import exchange, receive, request

BEFORE_MIDNIGHT = "2026-12-06T23:59:59.500Z"
AFTER_MIDNIGHT = "2026-12-07T00:00:02.000Z"


class Clock:
    """The time the storage modules stamp rows with, moved by the test."""

    def __init__(self, now: str) -> None:
        self.now = now

    def __call__(self) -> str:
        return self.now


async def requests_between(ws, since: str, until: str, **fields: str) -> int:  # type: ignore[no-untyped-def]
    report = await exchange(
        ws, {"type": "usage.query", "id": "u", "since": since, "until": until, **fields}
    )
    return int(report["grandTotal"]["requestCount"])


async def test_a_reply_across_midnight_counts_in_the_day_it_started(
    chat_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = fake_anthropic
    clock = Clock(BEFORE_MIDNIGHT)
    monkeypatch.setattr(stored_usage, "utc_now_iso", clock)
    monkeypatch.setattr(stored_messages, "utc_now_iso", clock)
    fake.enqueue(Scenario(text_chunks=["one ", "two ", "three"], stall_after=2, stall_seconds=1))
    async with chat_client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "chat.send", "id": "s", "content": "count"})
        frames = []
        while deltas(frames) != "one two ":
            frames.append(await receive(ws))
        # The row is opened as message_start arrives (a write queued behind the message's).
        await eventually(lambda: usage_rows(home))
        clock.now = AFTER_MIDNIGHT  # the stream is open; its reply ends after midnight
        end = (await until_end(ws, "s"))[-1]
        assert end["type"] == "chat.stream.end"
        [row] = closed_usage_rows(home)
        assert row["created_at"] == BEFORE_MIDNIGHT
        [reply] = query(home, "SELECT created_at FROM messages WHERE role = 'assistant'")
        assert reply["created_at"] == AFTER_MIDNIGHT
        session = {"sessionId": end["sessionId"]}

        for fields in ({}, session):
            assert await requests_between(ws, "2026-12-06", "2026-12-07", **fields) == 1
            assert await requests_between(ws, "2026-12-07", "2026-12-08", **fields) == 0
            # Hour ranges, whose whole hours come from the hourly sums.
            assert (
                await requests_between(ws, "2026-12-06T23:00Z", "2026-12-07T00:00Z", **fields) == 1
            )
            assert (
                await requests_between(ws, "2026-12-07T00:00Z", "2026-12-07T01:00Z", **fields) == 0
            )
