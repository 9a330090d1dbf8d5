"""5. Reports: usage.query over 100,000 usage rows, session.list over 10,000 sessions.

Timed like context.inspect, from the request to the reply frame's arrival. session.list is
timed as a page of 50 from the middle (``limit`` and ``after``: sessions 5,001 to 5,050),
against the target, and whole beside it; a gateway without pages is timed whole against the
target, as before pages existed.
"""

import json
import time
from typing import Any

from aiohttp import ClientWebSocketResponse

from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, summary_ms
from benchmarks.streams import REPLY_TIMEOUT_SECONDS, call, send

RUNS = 30
PAGE = 50
# The longest page session.list gives; used only to walk to the middle in few requests.
STRIDE = 1000
WARM_UP = 2
USAGE_TARGET_MS = 20.0
LIST_TARGET_MS = 10.0


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("reports", "5 reports")
    seeded = stage.seeded
    queries: list[tuple[str, dict[str, Any], float | None]] = [
        ("usage.query, every session", {"type": "usage.query"}, USAGE_TARGET_MS),
        (
            "usage.query, one session",
            {"type": "usage.query", "sessionId": seeded.usage_session},
            USAGE_TARGET_MS,
        ),
        (
            "usage.query, a 30-day range",
            {"type": "usage.query", "since": seeded.since, "until": seeded.until},
            USAGE_TARGET_MS,
        ),
    ]
    async with stage.sockets(1) as (ws,):
        page = await _middle_page_request(ws, seeded.sessions // 2)
        first = seeded.sessions // 2 + 1
        name = f"session.list, a page of {PAGE} ({first:,} to {first + PAGE - 1:,})"
        queries.append((name, page, LIST_TARGET_MS))
        queries.append((f"session.list, all {seeded.sessions:,}", {"type": "session.list"}, None))
        for name, message, target in queries:
            times = []
            reply: dict[str, Any] = {}
            size = 0
            for index in range(WARM_UP + RUNS):
                started = time.perf_counter()
                await send(ws, {**message, "id": f"q{index}"})
                frame = await ws.receive(timeout=REPLY_TIMEOUT_SECONDS)
                elapsed = time.perf_counter() - started
                reply, size = json.loads(frame.data), len(frame.data)
                if reply.get("type") == "error":
                    raise RuntimeError(f"{name} failed: {reply}")
                if "limit" in message and len(reply["sessions"]) != message["limit"]:
                    raise RuntimeError(f"{name}: {len(reply['sessions'])} sessions, not a page")
                if index >= WARM_UP:
                    times.append(elapsed)
            result.at_most(f"{name}: p50", ms(p50(times)), "ms", target)
            result.add(f"{name}: p99", ms(p99(times)), "ms")
            if message["type"] == "session.list":
                result.add(f"{name}: reply", size / 1000, "kB", digits=1)
            result.details[name] = {
                "ms": summary_ms(times),
                "reply_bytes": size,
                "rows_counted": _rows(reply),
            }
    return result


async def _middle_page_request(ws: ClientWebSocketResponse, skip: int) -> dict[str, Any]:
    """session.list for the page of PAGE just past the first ``skip`` sessions, found by
    paging as a client would (following nextAfter)."""
    skipped, after = 0, None
    while skipped < skip:
        message: dict[str, Any] = {
            "type": "session.list",
            "id": f"walk{skipped}",
            "limit": min(skip - skipped, STRIDE),
        }
        if after is not None:
            message["after"] = after
        reply = await call(ws, message)
        if reply.get("type") != "session.list" or "nextAfter" not in reply:
            raise RuntimeError(f"session.list ran out after {skipped:,} sessions: {reply}")
        skipped += len(reply["sessions"])
        after = reply["nextAfter"]
    return {"type": "session.list", "limit": PAGE, "after": after}


def _rows(reply: dict[str, Any]) -> int:
    if reply.get("type") == "usage.report":
        return int(reply["grandTotal"]["requestCount"])
    return len(reply.get("sessions", []))
