"""8. LiteLLM's proxy beside the gateway, on the same fake upstream.

python -m benchmarks --only litellm

Three ways to the same fake upstream take turns, round by round: the gateway over its
WebSocket (as in scenario 2: a session per connection, the message and reply stored, the
usage written), LiteLLM's proxy (benchmarks/litellm_proxy.py) through its
Anthropic-compatible `/v1/messages` with the same `AsyncAnthropic` client and call as
direct, and the SDK straight to the upstream (the baseline). The rounds rotate which way
goes first; at 50 in flight each way's burst waits for the servers to go quiet after the
one before (``benchmarks/quiet.py``), so none pays for another's leftover work.

Added time to first delta, as in scenario 2 (10 deltas 20 ms apart, streams started at
random within the length of one): 1 stream at a time, then 50 in flight; added = that
way's percentile minus direct's. Then relay throughput as in scenario 1 (one stream of
10,000 deltas, best of the rounds), as a ratio to direct. The gateway's figures are also
given as ratios to LiteLLM's: the targets. A negative added time means direct was the side
the machine's load disturbed in that run; the ratio is then n/a.
"""

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable

from anthropic import AsyncAnthropic

from benchmarks.litellm_proxy import LITELLM_VERSION, litellm_proxy
from benchmarks.processes import API_KEY
from benchmarks.quiet import quiet
from benchmarks.report import ScenarioResult
from benchmarks.scenarios.latency import DELTAS, SCENARIO, in_flight, through_gateway
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, ratio, summary_ms
from benchmarks.streams import StreamTiming, chunks, direct_stream, gateway_stream

WAYS = ("gateway", "litellm", "direct")
# (streams in flight, rounds of each way)
LEVELS = ((1, 30), (50, 4))
RELAY_DELTAS = 10_000
RELAY_ROUNDS = 4
TARGET_RATIO_TO_LITELLM = 0.1
TARGET_RELAY_RATIO = 0.95

Stream = Callable[[int, int], Awaitable[StreamTiming]]


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("litellm", f"8 beside LiteLLM {LITELLM_VERSION}")
    errors: list[str] = []
    load_before = os.getloadavg()[0]
    async with litellm_proxy(stage.workdir, stage.fake.base_url, stage.http) as proxy:
        direct = AsyncAnthropic(api_key=API_KEY, base_url=stage.fake.base_url)
        # No master key: the proxy takes any key and sends the upstream its configured one.
        peer = AsyncAnthropic(api_key="unused-by-the-proxy", base_url=proxy.base_url)
        try:
            servers = [stage.gateway.process.pid, stage.fake.process.pid, proxy.process.pid]
            for concurrency, rounds in LEVELS:
                watched = servers if concurrency > 1 else []
                timings = await _level(stage, direct, peer, concurrency, rounds, watched)
                _added(result, concurrency, timings, errors)
            rates = await _relay(stage, direct, peer, errors)
        finally:
            await direct.close()
            await peer.close()
        result.details["litellm_start_seconds"] = round(proxy.started_in_seconds, 1)
    best = {way: max(values, default=0.0) for way, values in rates.items()}
    gateway_relay = ratio(best["gateway"], best["direct"])
    result.check(
        "relay throughput, gateway / direct SDK",
        gateway_relay,
        "x",
        f">= {TARGET_RELAY_RATIO}",
        gateway_relay >= TARGET_RELAY_RATIO,
    )
    result.add(
        "relay throughput, LiteLLM / direct SDK", ratio(best["litellm"], best["direct"]), "x"
    )
    result.add("relay, direct SDK deltas/s (best round)", best["direct"], "/s", digits=0)
    result.add("errors", len(errors), digits=0)
    # The machine is shared: what else ran shows here, and moves every figure above.
    result.add("machine load average (1 min) before", load_before, digits=2)
    result.add("machine load average (1 min) after", os.getloadavg()[0], digits=2)
    result.details["relay_rates_per_second"] = rates
    result.details["errors"] = errors[:20]
    return result


async def _level(
    stage: Stage,
    direct: AsyncAnthropic,
    peer: AsyncAnthropic,
    concurrency: int,
    rounds: int,
    watched: list[int],
) -> dict[str, list[StreamTiming]]:
    timings: dict[str, list[StreamTiming]] = {way: [] for way in WAYS}
    async with stage.sockets(concurrency) as sockets:
        # Warm-up, each way: sessions started, connection pools filled, lazy imports done.
        await stage.fake.enqueue(stage.http, [SCENARIO] * concurrency)
        warm = await asyncio.gather(
            *(gateway_stream(ws, f"ll-warm-{i}") for i, ws in enumerate(sockets))
        )
        ways: dict[str, Stream] = {
            "gateway": through_gateway(sockets, [t.session_id for t in warm], concurrency),
            "litellm": lambda i, r: direct_stream(peer),
            "direct": lambda i, r: direct_stream(direct),
        }
        for way in ("litellm", "direct"):
            for _ in range(2):
                await in_flight(stage, concurrency, -1, ways[way])
        for number in range(rounds):
            order = WAYS[number % 3 :] + WAYS[: number % 3]
            for way in order:
                if watched:
                    await quiet(watched)
                timings[way] += await in_flight(stage, concurrency, number, ways[way])
    return timings


def _added(
    result: ScenarioResult,
    concurrency: int,
    timings: dict[str, list[StreamTiming]],
    errors: list[str],
) -> None:
    first: dict[str, list[float]] = {}
    for way, streams in timings.items():
        first[way] = []
        for timing in streams:
            if not timing.ok or timing.deltas != DELTAS:
                errors.append(f"{way} x{concurrency}: {timing.error or f'{timing.deltas} deltas'}")
            else:
                first[way].append(timing.to_first)
    label = f"x{concurrency}"
    details: dict[str, object] = {f"{way}_first_ms": summary_ms(first[way]) for way in WAYS}
    for name, percentile in (("p50", p50), ("p99", p99)):
        added = {
            way: ms(percentile(first[way]) - percentile(first["direct"]))
            for way in ("gateway", "litellm")
        }
        # Added time below zero means direct, the baseline, was the disturbed side in this
        # run: no ratio is told then (n/a, not met), rather than a negative one that passes.
        meaningful = added["gateway"] >= 0 and added["litellm"] > 0
        share = ratio(added["gateway"], added["litellm"]) if meaningful else math.nan
        result.add(f"{label} added to first delta {name}, gateway", added["gateway"], "ms")
        result.add(f"{label} added to first delta {name}, LiteLLM", added["litellm"], "ms")
        # At one stream the p99 of 30 is nearly the worst of them: shown, not a target.
        if concurrency == 1 and name == "p99":
            result.add(f"{label} {name}: gateway / LiteLLM", share, "x")
        else:
            target = f"<= {TARGET_RATIO_TO_LITELLM}"
            met = share <= TARGET_RATIO_TO_LITELLM
            result.check(f"{label} {name}: gateway / LiteLLM", share, "x", target, met)
        details[f"added_{name}_ms"] = {way: round(value, 3) for way, value in added.items()}
    result.details[label] = details


async def _relay(
    stage: Stage, direct: AsyncAnthropic, peer: AsyncAnthropic, errors: list[str]
) -> dict[str, list[float]]:
    scenario = {"text_chunks": chunks(RELAY_DELTAS)}
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    async with stage.sockets(1) as (ws,):
        ways: dict[str, Callable[[], Awaitable[StreamTiming]]] = {
            "gateway": lambda: gateway_stream(ws, f"ll-relay-{time.monotonic_ns()}"),
            "litellm": lambda: direct_stream(peer),
            "direct": lambda: direct_stream(direct),
        }
        await stage.fake.enqueue(stage.http, [{}] * len(WAYS))
        for way in WAYS:
            await ways[way]()
        for number in range(RELAY_ROUNDS):
            for way in WAYS[number % 3 :] + WAYS[: number % 3]:
                await stage.fake.enqueue(stage.http, [scenario])
                timing = await ways[way]()
                if timing.error or timing.deltas != RELAY_DELTAS:
                    errors.append(f"{way} relay: {timing.error or f'{timing.deltas} deltas'}")
                else:
                    rates[way].append(timing.steady_rate)
    return rates
