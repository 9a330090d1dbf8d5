"""6. The ceiling: what a bare aiohttp WebSocket server does with the same small frames.

The bare server sends the gateway's own delta frame as fast as ``send_str`` goes, and
echoes text frames back without looking at them. The gateway's ping/pong round trips (32
in flight, as a busy client keeps them) and its relay rate from scenario 1 are reported
as fractions of the bare send rate. The three measurements take turns, best round kept.
"""

import time
from collections.abc import Callable

import aiohttp
from aiohttp import ClientWebSocketResponse

from benchmarks.processes import bare_server
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, ratio

FRAMES = 50_000
ROUND_TRIPS = 20_000
WINDOW = 32
SEQUENTIAL = 1_000
ROUNDS = 3
FRAME = '{"type":"chat.stream.delta","requestId":"relay-0","delta":"word42 "}'


def ping(number: int) -> str:
    return f'{{"type":"ping","id":"p{number}"}}'


async def run(stage: Stage, relay_rate: float | None) -> ScenarioResult:
    result = ScenarioResult("ceiling", "6 the ceiling")
    sends, echoes, pongs = [], [], []
    with bare_server(stage.workdir) as bare_url:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(bare_url, max_msg_size=0) as bare,
            stage.sockets(1) as (gateway,),
        ):
            await _round_trips(bare, ping, 1000, WINDOW)
            await _round_trips(gateway, ping, 1000, WINDOW)
            for _ in range(ROUNDS):
                sends.append(await _bare_sends(bare))
                echoes.append(await _round_trips(bare, ping, ROUND_TRIPS, WINDOW))
                pongs.append(await _round_trips(gateway, ping, ROUND_TRIPS, WINDOW))
            bare_rtt = await _sequential(bare)
            gateway_rtt = await _sequential(gateway)
    ceiling = max(sends)
    result.add("bare server: frames/s sent", ceiling, "/s")
    result.add("bare server: echo round trips/s", max(echoes), "/s")
    result.add("gateway: ping/pong round trips/s", max(pongs), "/s")
    result.add("gateway ping/pong / bare frames", ratio(max(pongs), ceiling), "x")
    result.add(
        "gateway relay (scenario 1) / bare frames",
        ratio(relay_rate, ceiling) if relay_rate else float("nan"),
        "x",
    )
    result.add("ping round trip p50, one at a time: gateway", ms(p50(gateway_rtt)), "ms", digits=3)
    result.add("ping round trip p50, one at a time: bare echo", ms(p50(bare_rtt)), "ms", digits=3)
    result.details = {
        "frames": FRAMES,
        "round_trips": ROUND_TRIPS,
        "window": WINDOW,
        "bare_frames_per_second": sends,
        "bare_echo_per_second": echoes,
        "gateway_pong_per_second": pongs,
    }
    return result


async def _bare_sends(ws: ClientWebSocketResponse) -> float:
    await ws.send_str(f"send {FRAMES} {FRAME}")
    first = None
    received = 0
    while True:
        frame = await ws.receive(timeout=60)
        if frame.data == "done":
            break
        received += 1
        if first is None:
            first = time.perf_counter()
    last = time.perf_counter()
    assert first is not None
    assert received == FRAMES, received
    return (received - 1) / (last - first)


async def _round_trips(
    ws: ClientWebSocketResponse, message: Callable[[int], str], count: int, window: int
) -> float:
    """Round trips a second with ``window`` requests in flight; every reply is checked."""
    started = time.perf_counter()
    sent = 0
    for _ in range(min(window, count)):
        await ws.send_str(message(sent))
        sent += 1
    for _ in range(count):
        frame = await ws.receive(timeout=60)
        if '"p' not in frame.data:
            raise RuntimeError(f"not an answer to a ping: {frame.data[:200]}")
        if sent < count:
            await ws.send_str(message(sent))
            sent += 1
    return count / (time.perf_counter() - started)


async def _sequential(ws: ClientWebSocketResponse) -> list[float]:
    times = []
    for number in range(SEQUENTIAL):
        started = time.perf_counter()
        await ws.send_str(ping(number))
        await ws.receive(timeout=60)
        times.append(time.perf_counter() - started)
    return times
