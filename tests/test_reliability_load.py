"""200 chats at once, each on its own connection, against a real ``serve`` process: every
one completes, and the ledger adds up to exactly what the clients were told."""

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from fake_anthropic import Scenario
from reliability_helpers import StreamRecord, db_rows, exchange_rows, gateway_running, stream_chat

CHATS = 200
DELTAS = 50
NANO = 1_000_000_000


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The most upstream requests that were open at the same moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


async def test_200_concurrent_chats_complete_and_add_up(tmp_path: Path, fake_anthropic) -> None:
    fake, base_url = fake_anthropic
    chunks = [f"d{i} " for i in range(DELTAS)]
    fake.default = Scenario(text_chunks=chunks, delay_between_chunks=0.02)
    home = tmp_path / "home"
    database = home / "agentspace.db"
    # A different length each, so every chat has its own input tokens and cost.
    records = [StreamRecord(f"load-{n}", f"chat {n} " + "y" * (7 * n)) for n in range(CHATS)]
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default pool stops at 100

    async with (
        gateway_running(home, tmp_path, base_url) as gateway,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        rss_before, _ = gateway.rss_kib()
        sockets = await asyncio.gather(*(http.ws_connect(gateway.url) for _ in records))
        began = time.monotonic()
        async with asyncio.timeout(100):
            await asyncio.gather(
                *(stream_chat(ws, r) for ws, r in zip(sockets, records, strict=True))
            )
        took = time.monotonic() - began
        await sockets[0].send_str(json.dumps({"type": "usage.query", "id": "u"}))
        report = await sockets[0].receive_json(timeout=10)
        rss_after, rss_peak = gateway.rss_kib()
        await asyncio.gather(*(ws.close() for ws in sockets))

    errors = [r.error for r in records if r.error is not None]
    assert errors == []
    for record in records:
        assert record.end is not None
        # Every delta's text, in order (deltas that queued up may arrive joined).
        assert record.text == "".join(chunks)

    [[sessions]] = db_rows(database, "SELECT count(*) FROM sessions")
    [[users, replies, incomplete]] = db_rows(
        database,
        "SELECT count(*) FILTER (WHERE role = 'user'), count(*) FILTER (WHERE role = 'assistant'),"
        " count(*) FILTER (WHERE complete = 0) FROM messages",
    )
    [[usage_rows, ledger_nanousd, ledger_tokens]] = db_rows(
        database,
        "SELECT count(*), sum(cost_nanousd), sum(input_tokens + output_tokens"
        " + cache_creation_input_tokens + cache_read_input_tokens) FROM usage_records",
    )
    assert (sessions, users, replies, incomplete) == (CHATS, CHATS, CHATS, 0)
    assert usage_rows == CHATS

    wire_costs = [r.end["cost"]["totalCost"] for r in records if r.end is not None]
    wire_nanos = [r.end["cost"]["totalCostNanos"] for r in records if r.end is not None]
    for record, wire_cost, nanos in zip(records, wire_costs, wire_nanos, strict=True):
        [usage] = exchange_rows(database, record.content)["usage"]
        assert usage["cost_nanousd"] == round(wire_cost * NANO) == nanos
    assert len(set(wire_costs)) == CHATS  # every chat priced on its own

    grand = report["grandTotal"]
    assert grand["requestCount"] == CHATS
    assert round(grand["totalCost"] * NANO) == ledger_nanousd  # exact, in nano-dollars
    # The integers add up exactly: the replies' costs are the report's total to the nano.
    assert sum(wire_nanos) == grand["totalCostNanos"] == ledger_nanousd
    assert grand["totalTokens"] == ledger_tokens
    assert grand["totalTokens"] == sum(r.end["usage"]["totalTokens"] for r in records if r.end)

    overlap = peak_overlap([(r.started_at, r.ended_at or r.started_at) for r in fake.replies])
    print(
        f"\n{CHATS} chats x {DELTAS} deltas in {took:.1f} s; at most {overlap} upstream "
        f"streams open at once; gateway RSS {rss_before // 1024} MiB before, "
        f"{rss_after // 1024} MiB after, peak {rss_peak // 1024} MiB"
    )
