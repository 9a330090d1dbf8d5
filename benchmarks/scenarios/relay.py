"""1. Relay throughput: one stream of 10,000 deltas, through the gateway and straight.

The three ways of reading the same upstream stream take turns, round after round, so a
burst of load from elsewhere on the machine hits all of them alike; each is judged by its
best round (the one least disturbed). CPU time per delta is reported too: the gateway
process's own, against this process's when it reads the stream itself, which no
neighbour's load changes.
"""

import time

from anthropic import AsyncAnthropic

from benchmarks.processes import API_KEY
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import p50, ratio
from benchmarks.streams import StreamTiming, chunks, direct_stream, gateway_stream

DELTAS = 10_000
ROUNDS = 5
TARGET = 0.9
WAYS = ("direct", "gateway", "helper")


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("relay", "1 relay throughput")
    scenario = {"text_chunks": chunks(DELTAS)}
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    errors: list[str] = []
    frames: list[int] = []  # delta frames the client got per gateway round
    client = AsyncAnthropic(api_key=API_KEY, base_url=stage.fake.base_url)
    try:
        async with stage.sockets(1) as (ws,):
            # A short stream each way first: connection pools, lazy imports, caches.
            await stage.fake.enqueue(stage.http, [{}, {}])
            await gateway_stream(ws, "relay-warm")
            await direct_stream(client)
            for number in range(ROUNDS):
                for way in WAYS:
                    await stage.fake.enqueue(stage.http, [scenario])
                    if way == "gateway":
                        before = stage.gateway.process.cpu_seconds()
                        timing = await gateway_stream(ws, f"relay-{number}")
                        used = stage.gateway.process.cpu_seconds() - before
                    else:
                        before = time.process_time()
                        timing = await direct_stream(client, helper=way == "helper")
                        used = time.process_time() - before
                    problem = _problem(timing)
                    if problem:
                        errors.append(f"{way} round {number}: {problem}")
                        continue
                    rates[way].append(timing.steady_rate)
                    cpu[way].append(used / DELTAS)
                    if way == "gateway":
                        frames.append(timing.frames)
    finally:
        await client.close()

    best = {way: max(values, default=0.0) for way, values in rates.items()}
    relay_ratio = ratio(best["gateway"], best["direct"])
    result.add("gateway: deltas/s received (best round)", best["gateway"], "/s")
    result.add("direct SDK raw stream: deltas/s", best["direct"], "/s")
    result.add("direct SDK messages.stream(): deltas/s", best["helper"], "/s")
    result.check(
        "ratio gateway / direct raw stream", relay_ratio, "x", ">= 0.90", relay_ratio >= TARGET
    )
    result.add(
        "ratio gateway / direct messages.stream()", ratio(best["gateway"], best["helper"]), "x"
    )
    cpu_us = {way: p50(values) * 1e6 if values else float("nan") for way, values in cpu.items()}
    result.add("gateway process CPU per delta", cpu_us["gateway"], "us", digits=1)
    result.add("direct raw stream CPU per delta", cpu_us["direct"], "us", digits=1)
    # When the gateway process is the busiest stage, its rate is bounded by this ratio.
    result.add(
        "bound: direct CPU / gateway CPU per delta", cpu_us["direct"] / cpu_us["gateway"], "x"
    )
    # Fewer frames than deltas: deltas that queued behind the writer went out joined.
    result.add(
        "gateway: delta frames received per round (median)",
        p50([float(n) for n in frames]) if frames else float("nan"),
        "",
        digits=0,
    )
    result.add("errors", len(errors), digits=0)
    result.details = {
        "deltas": DELTAS,
        "rounds": ROUNDS,
        "rates_per_second": rates,
        "cpu_seconds_per_delta": cpu,
        "errors": errors,
        "gateway_delta_frames": frames,
        "best_rate_gateway": best["gateway"],
    }
    return result


def _problem(timing: StreamTiming) -> str | None:
    if timing.error:
        return timing.error
    if timing.deltas != DELTAS:
        return f"{timing.deltas} deltas received, {DELTAS} sent"
    if timing.output_tokens != DELTAS:
        return f"usage reports {timing.output_tokens} output tokens, {DELTAS} sent"
    return None
