"""3. Connections: 1,000 WebSockets held open, 100 of them streaming at once.

A gateway of its own, so that memory freed by earlier scenarios is not quietly reused and
subtracted from what these connections cost. Its resident set is read from /proc before
the connections, with them idle, and at its peak while 100 of them stream; every
connection must still answer a ping at the end, and every stream must end whole.
"""

import asyncio
import contextlib

from benchmarks.processes import gateway, prepare_home
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.streams import call, chunks, gateway_stream

CONNECTIONS = 1_000
STREAMING = 100
STREAM_DELTAS = 100
# 100 deltas 20 ms apart: two seconds of each stream overlapping all the others.
STREAM = {"text_chunks": chunks(STREAM_DELTAS), "delay_between_chunks": 0.02}
SETTLE_SECONDS = 0.5
TARGET_KB = 40.0


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("connections", "3 connections")
    home = stage.workdir / "home-connections"
    await asyncio.to_thread(prepare_home, home, stage.fake.base_url, stage.workdir)
    errors: list[str] = []
    with gateway(home, stage.fake.base_url, stage.workdir, "gateway-connections") as served:
        process = served.process
        # Warm-up: the first connections and the first chat load what every later one uses.
        async with stage.sockets(10, gateway=served) as warm:
            await asyncio.gather(*(call(ws, {"type": "ping", "id": "warm"}) for ws in warm))
            await stage.fake.enqueue(stage.http, [{}])
            await gateway_stream(warm[0], "warm")
        await asyncio.sleep(SETTLE_SECONDS)
        before = process.rss_kb()
        await served.reset_loop_monitor(stage.http)
        async with stage.sockets(CONNECTIONS, gateway=served) as sockets:
            errors += await _ping_all(sockets, "opened")
            await asyncio.sleep(SETTLE_SECONDS)
            idle = process.rss_kb()

            peak = idle
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, process.rss_kb())
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            await stage.fake.enqueue(stage.http, [STREAM] * STREAMING)
            streams = await asyncio.gather(
                *(gateway_stream(ws, f"stream-{i}") for i, ws in enumerate(sockets[:STREAMING]))
            )
            sampling = False
            await sampler
            for index, timing in enumerate(streams):
                if timing.error or timing.deltas != STREAM_DELTAS:
                    errors.append(f"stream {index}: {timing.error or f'{timing.deltas} deltas'}")
            errors += await _ping_all(sockets, "after streaming")
        loop = await served.reset_loop_monitor(stage.http)

    per_connection = (idle - before) / CONNECTIONS
    result.check(
        "server memory per idle connection",
        per_connection,
        "KB",
        f"<= {TARGET_KB:g} KB",
        per_connection <= TARGET_KB,
        digits=1,
    )
    result.add(
        "peak extra per connection, 100 streaming", (peak - before) / CONNECTIONS, "KB", digits=1
    )
    result.check("errors", len(errors), "", "0", not errors, digits=0)
    result.details = {
        "connections": CONNECTIONS,
        "streaming": STREAMING,
        "rss_kb": {"before": before, "idle": idle, "peak_streaming": peak},
        "errors": errors[:20],
        "loop": loop,
    }
    return result


async def _ping_all(sockets: list, when: str) -> list[str]:  # type: ignore[type-arg]
    async def ping(index: int) -> str | None:
        with contextlib.suppress(Exception):
            reply = await call(sockets[index], {"type": "ping", "id": f"p{index}"}, timeout=30)
            if reply.get("type") == "pong":
                return None
            return f"connection {index} {when}: {reply}"
        return f"connection {index} {when}: no pong"

    answers = await asyncio.gather(*(ping(index) for index in range(len(sockets))))
    return [answer for answer in answers if answer]
