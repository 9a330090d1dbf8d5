"""4. Context inspection: sessions of 10, 50 and 200 messages of about 2 KB each.

Cold is a session's first inspection since the gateway started; warm is the same session
again. The time runs from sending ``context.inspect`` to the reply frame's arrival (its
JSON is parsed after the clock stops: the client's parse is not the gateway's work). The
baseline is tiktoken encoding the same history text in this process, the work a gateway
without stored estimates would redo on every inspection.
"""

import json
import time

import tiktoken

from benchmarks.report import ScenarioResult
from benchmarks.seed import CONTEXT_SIZES, ENCODING
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, ratio, summary_ms
from benchmarks.streams import REPLY_TIMEOUT_SECONDS, send

WARM_RUNS = 30
TARGET_SIZE = 200
TARGET_MS = 5.0


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("context", "4 context inspection")
    encoding = tiktoken.get_encoding(ENCODING)
    async with stage.sockets(1) as (ws,):

        async def inspect(session_id: str, request_id: str) -> tuple[float, dict]:  # type: ignore[type-arg]
            started = time.perf_counter()
            await send(ws, {"type": "context.inspect", "id": request_id, "sessionId": session_id})
            frame = await ws.receive(timeout=REPLY_TIMEOUT_SECONDS)
            elapsed = time.perf_counter() - started
            reply = json.loads(frame.data)
            if reply.get("type") != "context.inspection":
                raise RuntimeError(f"context.inspect failed: {reply}")
            return elapsed, reply

        for size in CONTEXT_SIZES:
            sessions = stage.seeded.context_sessions[size]
            cold = []
            for index, session_id in enumerate(sessions):
                elapsed, reply = await inspect(session_id, f"cold-{size}-{index}")
                cold.append(elapsed)
            warm = []
            for index in range(WARM_RUNS):
                elapsed, reply = await inspect(sessions[0], f"warm-{size}-{index}")
                warm.append(elapsed)
            history = next(s for s in reply["sections"] if s["name"] == "history")["content"]
            encoding.encode_ordinary(history)
            encode = min(_timed(encoding.encode_ordinary, history) for _ in range(5))
            label = f"{size} msgs"
            result.add(f"{label}: cold p50", ms(p50(cold)), "ms")
            limit = TARGET_MS if size == TARGET_SIZE else None
            result.at_most(f"{label}: warm p50", ms(p50(warm)), "ms", limit)
            result.add(f"{label}: warm p99", ms(p99(warm)), "ms")
            result.add(f"{label}: warm / tiktoken encode", ratio(p50(warm), encode), "x")
            result.details[label] = {
                "cold_ms": summary_ms(cold),
                "warm_ms": summary_ms(warm),
                "tiktoken_encode_ms": round(ms(encode), 3),
                "history_chars": len(history),
                "reply_tokens_estimate": reply["totals"]["tokenEstimate"],
            }
    return result


def _timed(function, argument) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started
