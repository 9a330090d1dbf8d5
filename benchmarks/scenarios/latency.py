"""2. Added latency: time to first and last delta, through the gateway against straight.

At each level, that many streams are in flight at once, each on its own connection (a
WebSocket to the gateway; an HTTP connection from the SDK's pool when direct), each started
at a random point within the length of one stream, so requests arrive while the others
stream, as they would from that many busy clients (not all in the same millisecond).
Upstream streams 10 deltas 20 ms apart, a model writing 50 tokens a second. Gateway and
direct take turns round by round, so a burst of load from elsewhere hits both alike.

Each gateway stream continues a session of its own (``sessionId`` given), as a
conversation does: the user message and the reply are stored, the usage row written. The
added time is the gateway's percentile minus the direct percentile: streams are not paired
one to one.

At 50 in flight a bare aiohttp chat relay (``benchmarks/bare_chat.py``: the same frames and
upstream request, nothing stored or checked) takes a third turn, and its CPU per chat is
the floor the gateway's is given beside: what aiohttp's WebSocket and client cost for the
same chats on this machine, before any of the gateway's own work.
"""

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import ClientWebSocketResponse
from anthropic import AsyncAnthropic

from benchmarks.processes import API_KEY, BareServer, bare_chat
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, ratio, summary_ms
from benchmarks.streams import StreamTiming, chunks, direct_stream, gateway_stream

DELTAS = 10
DELTA_INTERVAL_SECONDS = 0.02
STREAM_SECONDS = DELTAS * DELTA_INTERVAL_SECONDS
# (streams in flight, rounds of them, gateway and direct taking turns)
LEVELS = ((1, 30), (50, 4), (200, 2))
TARGET_LEVEL = 50
TARGET_P50_MS = 2.0
TARGET_P99_MS = 5.0
# Issue 14: the gateway process's CPU (user + system, all threads) per chat at 50 in flight.
TARGET_CPU_PER_CHAT_MS = 2.0
SCENARIO = {"text_chunks": chunks(DELTAS), "delay_between_chunks": DELTA_INTERVAL_SECONDS}


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("latency", "2 added latency")
    client = AsyncAnthropic(api_key=API_KEY, base_url=stage.fake.base_url)
    await stage.gateway.reset_loop_monitor(stage.http)
    process = stage.gateway.process
    cpu_before, forced_before = process.cpu_seconds(), process.switches_forced()
    began = time.monotonic()
    errors: list[str] = []
    try:
        for concurrency, rounds in LEVELS:
            timings: dict[str, list[StreamTiming]] = {"gateway": [], "direct": []}
            floor_ms = None
            if concurrency == TARGET_LEVEL:
                with bare_chat(stage.workdir, stage.fake.base_url) as bare:
                    bare_timings, bare_cpu = await _bare(stage, bare, concurrency, rounds)
                floor_ms = _floor(result, concurrency, bare_timings, bare_cpu, errors)
            async with stage.sockets(concurrency) as sockets:
                # Warm-up: a stream per connection starts its session and fills the pools.
                await stage.fake.enqueue(stage.http, [SCENARIO] * concurrency)
                warm = await asyncio.gather(
                    *(gateway_stream(ws, f"warm-{i}") for i, ws in enumerate(sockets))
                )
                sessions = [timing.session_id for timing in warm]
                await stage.fake.enqueue(stage.http, [SCENARIO] * concurrency)
                await asyncio.gather(*(direct_stream(client) for _ in range(concurrency)))

                gateway = through_gateway(sockets, sessions, concurrency)
                cpu = 0.0
                for number in range(rounds):
                    # Turn about, round by round: load from elsewhere hits both alike.
                    before = process.cpu_seconds()
                    timings["gateway"] += await in_flight(stage, concurrency, number, gateway)
                    # Only the gateway's own rounds: not the warm-up, the connections
                    # opened, nor its idle time while direct runs.
                    cpu += process.cpu_seconds() - before
                    timings["direct"] += await in_flight(
                        stage, concurrency, number, lambda i, r: direct_stream(client)
                    )
            _level(result, concurrency, timings, errors)
            _cpu(result, concurrency, cpu, len(timings["gateway"]), floor_ms)
    finally:
        await client.close()
    loop = await stage.gateway.reset_loop_monitor(stage.http)
    loop["processCpuSeconds"] = round(process.cpu_seconds() - cpu_before, 2)
    loop["wallSeconds"] = round(time.monotonic() - began, 2)
    loop["forcedSwitches"] = process.switches_forced() - forced_before
    result.add("errors", len(errors), digits=0)
    result.details["errors"] = errors[:20]
    result.details["loop"] = loop
    return result


async def _bare(
    stage: Stage, bare: BareServer, concurrency: int, rounds: int
) -> tuple[list[StreamTiming], float]:
    """The bare relay's rounds at this level, and its CPU over them (seconds)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        sockets = [
            await stack.enter_async_context(session.ws_connect(bare.url, max_msg_size=0))
            for _ in range(concurrency)
        ]

        def stream(index: int, number: int) -> Awaitable[StreamTiming]:
            return gateway_stream(sockets[index], f"bare-{concurrency}-{index}-{number}")

        await in_flight(stage, concurrency, -1, stream)  # warm-up: the pool, lazy imports
        timings: list[StreamTiming] = []
        before = bare.process.cpu_seconds()
        for number in range(rounds):
            timings += await in_flight(stage, concurrency, number, stream)
        return timings, bare.process.cpu_seconds() - before


def _floor(
    result: ScenarioResult,
    concurrency: int,
    timings: list[StreamTiming],
    cpu_seconds: float,
    errors: list[str],
) -> float:
    """Its CPU per chat (ms), reported."""
    good = [timing for timing in timings if timing.ok and timing.deltas == DELTAS]
    errors += [f"bare x{concurrency}: {t.error or t.deltas}" for t in timings if t not in good]
    per_chat_ms = cpu_seconds * 1000 / len(good) if good else math.nan
    result.add(f"x{concurrency} bare aiohttp chat relay CPU per chat", per_chat_ms, "ms")
    result.details[f"x{concurrency}_bare_first_ms"] = summary_ms([t.to_first for t in good])
    return per_chat_ms


def through_gateway(
    sockets: list[ClientWebSocketResponse], sessions: list[str | None], concurrency: int
) -> Callable[[int, int], Awaitable[StreamTiming]]:
    def stream(index: int, number: int) -> Awaitable[StreamTiming]:
        request_id = f"c{concurrency}-{index}-{number}"
        return gateway_stream(sockets[index], request_id, sessions[index])

    return stream


async def in_flight(
    stage: Stage,
    concurrency: int,
    number: int,
    stream: Callable[[int, int], Awaitable[StreamTiming]],
) -> list[StreamTiming]:
    """A stream on each of ``concurrency`` connections, started at random within the length
    of one, so that each starts while most of the others are streaming."""
    await stage.fake.enqueue(stage.http, [SCENARIO] * concurrency)
    randomness = random.Random(concurrency * 1000 + number)

    async def connection(index: int) -> StreamTiming:
        if concurrency > 1:
            await asyncio.sleep(randomness.random() * STREAM_SECONDS)
        return await stream(index, number)

    return list(await asyncio.gather(*(connection(i) for i in range(concurrency))))


def _cpu(
    result: ScenarioResult,
    concurrency: int,
    cpu_seconds: float,
    chats: int,
    floor_ms: float | None,
) -> None:
    """CPU per chat over the gateway's measured rounds at this level (/proc ticks: 10 ms
    each, so a level's rounds together, never one chat, are what is read); beside the bare
    relay's (``floor_ms``) where it was measured."""
    per_chat_ms = cpu_seconds * 1000 / chats if chats else math.nan
    limit = TARGET_CPU_PER_CHAT_MS if concurrency == TARGET_LEVEL else None
    result.at_most(f"x{concurrency} gateway CPU per chat", per_chat_ms, "ms", limit)
    if floor_ms is not None:
        result.add(
            f"x{concurrency} gateway CPU per chat / the bare relay's",
            ratio(per_chat_ms, floor_ms),
            "x",
        )


def _level(
    result: ScenarioResult,
    concurrency: int,
    timings: dict[str, list[StreamTiming]],
    errors: list[str],
) -> None:
    good: dict[str, list[StreamTiming]] = {}
    for way, streams in timings.items():
        good[way] = []
        for timing in streams:
            if not timing.ok or timing.deltas != DELTAS:
                errors.append(f"{way} x{concurrency}: {timing.error or f'{timing.deltas} deltas'}")
            else:
                good[way].append(timing)
    first = {way: [t.to_first for t in streams] for way, streams in good.items()}
    last = {way: [t.to_last for t in streams] for way, streams in good.items()}
    added = {
        "first_p50": ms(p50(first["gateway"]) - p50(first["direct"])),
        "first_p99": ms(p99(first["gateway"]) - p99(first["direct"])),
        "last_p50": ms(p50(last["gateway"]) - p50(last["direct"])),
        "last_p99": ms(p99(last["gateway"]) - p99(last["direct"])),
    }
    label = f"x{concurrency}"
    targeted = concurrency == TARGET_LEVEL
    for key, limit in (("first_p50", TARGET_P50_MS), ("first_p99", TARGET_P99_MS)):
        name = f"{label} added to first delta {key.removeprefix('first_')}"
        result.at_most(name, added[key], "ms", limit if targeted else None)
    result.add(f"{label} added to last delta p50", added["last_p50"], "ms")
    result.add(f"{label} added to last delta p99", added["last_p99"], "ms")
    result.details[label] = {
        "added_ms": {key: round(value, 3) for key, value in added.items()},
        "gateway_first_ms": summary_ms(first["gateway"]),
        "direct_first_ms": summary_ms(first["direct"]),
        "gateway_last_ms": summary_ms(last["gateway"]),
        "direct_last_ms": summary_ms(last["direct"]),
    }
