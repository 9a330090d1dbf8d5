"""5. Reports: usage.query over 100,000 usage rows, session.list over 10,000 sessions.

Timed like context.inspect, from the request to the reply frame's arrival. session.list is
timed whole and, when this gateway pages it (``limit``), as a page of 50 from the middle.
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
MIDDLE_PAGE = 100  # pages in: sessions 5,001 to 5,050 of 10,000
WARM_UP = 2
USAGE_TARGET_MS = 20.0
LIST_TARGET_MS = 10.0


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("reports", "5 reports")
    seeded = stage.seeded
    queries: list[tuple[str, dict[str, Any], float]] = [
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
        page = await _page_request(ws)
        if page is None:
            name = f"session.list, all {seeded.sessions:,} (the protocol has no pages)"
            queries.append((name, {"type": "session.list"}, LIST_TARGET_MS))
        else:
            queries.append(("session.list, a page of 50", page, LIST_TARGET_MS))
            queries.append((f"session.list, all {seeded.sessions:,}", {"type": "session.list"}, 0))
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
                if index >= WARM_UP:
                    times.append(elapsed)
            if target:
                result.check(
                    f"{name}: p50",
                    ms(p50(times)),
                    "ms",
                    f"<= {target:g} ms",
                    ms(p50(times)) <= target,
                )
            else:
                result.add(f"{name}: p50", ms(p50(times)), "ms")
            result.add(f"{name}: p99", ms(p99(times)), "ms")
            result.details[name] = {
                "ms": summary_ms(times),
                "reply_bytes": size,
                "rows_counted": _rows(reply),
            }
    return result


async def _page_request(ws: ClientWebSocketResponse) -> dict[str, Any] | None:
    """session.list for a page from the middle, or None when the gateway has no pages."""
    probe = await call(ws, {"type": "session.list", "id": "probe", "limit": PAGE})
    if probe.get("type") == "error":
        return None
    after = probe["sessions"][-1]["sessionId"]
    for number in range(MIDDLE_PAGE - 1):
        page = await call(
            ws, {"type": "session.list", "id": f"p{number}", "limit": PAGE, "after": after}
        )
        after = page["sessions"][-1]["sessionId"]
    return {"type": "session.list", "limit": PAGE, "after": after}


def _rows(reply: dict[str, Any]) -> int:
    if reply.get("type") == "usage.report":
        return int(reply["grandTotal"]["requestCount"])
    return len(reply.get("sessions", []))
