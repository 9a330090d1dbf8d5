"""9. The HTTP doors: POST /v1/messages and /v1/chat/completions relayed, beside direct.

A raw-bytes client (aiohttp, reading the SSE bytes as they come, parsing nothing) reads
the same fake upstream's stream through the gateway and straight, the ways taking turns
round after round so the machine's load hits them alike. Figures:

- relay throughput: one stream of 10,000 deltas, deltas a second from the first body byte
  to the last, best round each way, as a ratio gateway / direct;
- added time to first byte (first body byte after the request left) at 1 stream and at 50
  in flight, p50 and p99, gateway minus direct; at 50 also LiteLLM's /v1/messages when its
  venv is installed (scenario 8's), as the ratio of the added times;
- the floor under those figures: a bare aiohttp relay of /v1/messages
  (``benchmarks/bare_relay.py``: the same pool settings, no key, no metering) takes its
  turn beside them on the Anthropic door, and the gateway's figures are given beyond it
  too (what the gateway's own work adds over what aiohttp itself costs here);
- memory per open stream: the gateway's RSS with N streams held open mid-stream (the fake
  stalls after one delta) minus before, over N.
"""

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs

from benchmarks.litellm_proxy import _COMPLETE, LITELLM_VERSION, VENV, Proxy, litellm_proxy
from benchmarks.processes import API_KEY, BareServer, ServerProcess, bare_relay
from benchmarks.proxy_setup import OPENAI_MODEL, PROVIDER
from benchmarks.quiet import quiet
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, ratio, summary_ms
from benchmarks.streams import MODEL, chunks

RELAY_DELTAS = 10_000
RELAY_ROUNDS = 4
# (streams in flight, rounds of each way). On this shared machine the median of 30 single
# requests moved 0.9-1.5 ms from one run to the next on the same code, its first rounds
# slower than the rest; 200 (about 2 s) settle it.
LEVELS = ((1, 200), (50, 4))
HELD_STREAMS = 100
TARGET_RELAY = 0.95
TARGET_ADDED_MS = 1.0
TARGET_TO_LITELLM = 0.1
TIMEOUT = aiohttp.ClientTimeout(total=60)

Read = Callable[[], Awaitable["Timing"]]


@attrs.define
class Timing:
    started: float
    first: float = math.nan
    last: float = math.nan
    deltas: int = 0
    error: str | None = None

    @property
    def to_first(self) -> float:
        return self.first - self.started

    @property
    def rate(self) -> float:
        span = self.last - self.first
        return self.deltas / span if span > 0 else 0.0


@attrs.define
class Door:
    """One protocol: how to ask the gateway and the fake, and how to queue the fake."""

    name: str
    path: str
    fake_url: str  # what /v1/... is appended to for the direct way
    marker: bytes  # one per text delta in the SSE bytes
    gateway_body: dict[str, Any]
    direct_body: dict[str, Any]
    gateway_headers: dict[str, str]
    direct_headers: dict[str, str]


def _doors(stage: Stage) -> list[Door]:
    assert stage.client_key is not None
    assert stage.openai_url is not None
    messages = [{"role": "user", "content": "Go on."}]
    anthropic = {"model": MODEL, "max_tokens": 4096, "messages": messages, "stream": True}
    version = {"anthropic-version": "2023-06-01"}
    openai = {"messages": messages, "stream": True}
    return [
        Door(
            "anthropic",
            "/v1/messages",
            stage.fake.base_url,
            b'"text_delta"',
            anthropic,
            anthropic,
            {"x-api-key": stage.client_key, **version},
            {"x-api-key": API_KEY, **version},
        ),
        Door(
            "openai",
            "/v1/chat/completions",
            stage.openai_url.removesuffix("/v1"),
            b'"content": "',
            {**openai, "model": f"{PROVIDER}/{OPENAI_MODEL}"},
            # The gateway always asks for the usage chunk; so does the direct way.
            {**openai, "model": OPENAI_MODEL, "stream_options": {"include_usage": True}},
            {"Authorization": f"Bearer {stage.client_key}"},
            {"Authorization": "Bearer none"},
        ),
    ]


async def read(http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> Timing:
    """POST and read the body's bytes to the end; count the deltas after the clock stops."""
    pieces: list[bytes] = []
    timing = Timing(time.perf_counter())
    try:
        async with http.post(url, json=body, headers=headers, timeout=TIMEOUT) as response:
            if response.status != 200:
                timing.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                return timing
            async for piece in response.content.iter_any():
                now = time.perf_counter()
                if not pieces:
                    timing.first = now
                timing.last = now
                pieces.append(piece)
    except (aiohttp.ClientError, TimeoutError) as error:
        timing.error = f"{type(error).__name__}: {error}"
    return timing if not pieces else _counted(timing, b"".join(pieces))


def _counted(timing: Timing, data: bytes) -> Timing:
    timing.deltas = data.count(b'"text_delta"') or data.count(b'"content": "') - 1
    return timing


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("proxy", "9 HTTP doors (/v1/messages, /v1/chat/completions)")
    load_before = os.getloadavg()[0]
    errors: list[str] = []
    doors = _doors(stage)
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        _litellm(stage) as litellm,
    ):
        with bare_relay(stage.workdir, stage.fake.base_url) as bare:
            servers = [stage.gateway.process, stage.fake.process, bare.process]
            if litellm is not None:
                servers.append(litellm.process)
            for door in doors:
                await _door(stage, http, door, litellm, bare, servers, result, errors)
        per_stream = await _held(stage, http, doors[0], errors)
    result.add("anthropic: gateway memory per open stream", per_stream, "kB", digits=1)
    if litellm is None:
        result.details["litellm"] = f"not installed ({VENV}); run with --only proxy,litellm"
    result.add("errors", len(errors), digits=0)
    result.add("machine load average (1 min) before", load_before, digits=2)
    result.add("machine load average (1 min) after", os.getloadavg()[0], digits=2)
    result.details["errors"] = errors[:20]
    return result


async def _door(
    stage: Stage,
    http: aiohttp.ClientSession,
    door: Door,
    litellm: Proxy | None,
    bare_server: BareServer,
    servers: list[ServerProcess],
    result: ScenarioResult,
    errors: list[str],
) -> None:
    """One door's relay and levels. The bare relay speaks only /v1/messages. At 50 in
    flight each burst waits for ``servers`` to go quiet after the one before (``quiet``)."""
    bare = bare_server.url if door.name == "anthropic" else None
    rates = await _relay(stage, http, door, errors, bare)
    best = {way: max(values, default=0.0) for way, values in rates.items()}
    relay = ratio(best["gateway"], best["direct"])
    result.check(
        f"{door.name}: relay throughput, gateway / direct",
        relay,
        "x",
        f">= {TARGET_RELAY}",
        relay >= TARGET_RELAY,
    )
    if "bare" in best:
        bare_relay_ratio = ratio(best["bare"], best["direct"])
        result.add(f"{door.name}: relay, bare aiohttp / direct", bare_relay_ratio, "x")
    result.add(f"{door.name}: relay, direct deltas/s (best)", best["direct"], "/s", digits=0)
    result.details[f"{door.name}_relay_rates"] = rates
    for concurrency, rounds in LEVELS:
        if door.name == "openai" and concurrency > 1:
            continue
        crowded = concurrency > 1
        peer = litellm.base_url if litellm is not None and door.name == "anthropic" else None
        ways = _ways(stage, http, door, peer if crowded else None, bare)
        watched = [server.pid for server in servers] if crowded else []
        firsts, waited = await _level(ways, door, concurrency, rounds, errors, watched)
        _added(result, door.name, concurrency, firsts)
        if watched:
            result.details[f"{door.name}_x{concurrency}_quiet_wait_s"] = waited


@contextlib.asynccontextmanager
async def _litellm(stage: Stage) -> AsyncIterator[Proxy | None]:
    """LiteLLM's proxy when scenario 8's venv is installed, else None."""
    marker = VENV / _COMPLETE
    if not marker.exists() or marker.read_text().strip() != LITELLM_VERSION:
        yield None
        return
    async with litellm_proxy(stage.workdir, stage.fake.base_url, stage.http) as proxy:
        yield proxy


def _ways(
    stage: Stage,
    http: aiohttp.ClientSession,
    door: Door,
    peer: str | None,
    bare: str | None = None,
) -> dict[str, Read]:
    gateway = stage.gateway.http_url + door.path
    direct = door.fake_url + door.path
    ways: dict[str, Read] = {
        "gateway": lambda: read(http, gateway, door.gateway_body, door.gateway_headers),
        "direct": lambda: read(http, direct, door.direct_body, door.direct_headers),
    }
    if peer is not None:
        litellm = peer + door.path
        ways["litellm"] = lambda: read(http, litellm, door.direct_body, door.direct_headers)
    if bare is not None:
        relayed = bare + door.path
        ways["bare"] = lambda: read(http, relayed, door.direct_body, door.direct_headers)
    return ways


async def _enqueue(stage: Stage, door: Door, http: aiohttp.ClientSession, items: list[Any]) -> None:
    url = door.fake_url + "/_fake/scenarios"
    async with http.post(url, json=items) as response:
        if response.status != 200:
            raise RuntimeError(f"the fake refused the scenarios: {await response.text()}")


async def _relay(
    stage: Stage, http: aiohttp.ClientSession, door: Door, errors: list[str], bare: str | None
) -> dict[str, list[float]]:
    ways = _ways(stage, http, door, None, bare)
    rates: dict[str, list[float]] = {way: [] for way in ways}
    scenario = {"text_chunks": chunks(RELAY_DELTAS)}
    for way in ways:  # warm-up: pools, lazy imports
        await ways[way]()
    for number in range(RELAY_ROUNDS):
        names = list(ways)
        order = names[number % len(names) :] + names[: number % len(names)]
        for way in order:
            await _enqueue(stage, door, http, [scenario])
            timing = await ways[way]()
            if timing.error or timing.deltas != RELAY_DELTAS:
                errors.append(f"{door.name} {way} relay: {timing.error or timing.deltas}")
            else:
                rates[way].append(timing.rate)
    return rates


async def _level(
    ways: dict[str, Read],
    door: Door,
    concurrency: int,
    rounds: int,
    errors: list[str],
    watched: list[int],
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each way's times to first byte; and, by way, how long its bursts waited for the
    ``watched`` processes to go quiet after the burst before (seconds, in all)."""
    firsts: dict[str, list[float]] = {way: [] for way in ways}
    waited = dict.fromkeys(ways, 0.0)
    names = list(ways)
    for number in range(-1, rounds):  # round -1 warms each way up at this level
        order = names[number % len(names) :] + names[: number % len(names)]
        for way in order:
            if watched:
                waited[way] = round(waited[way] + await quiet(watched), 3)
            timings = await asyncio.gather(*(ways[way]() for _ in range(concurrency)))
            for timing in timings:
                if timing.error or math.isnan(timing.first):
                    errors.append(f"{door.name} {way} x{concurrency}: {timing.error}")
                elif number >= 0:
                    firsts[way].append(timing.to_first)
    return firsts, waited


def _added(
    result: ScenarioResult, door: str, concurrency: int, firsts: dict[str, list[float]]
) -> None:
    label = f"{door}: x{concurrency} added to first byte"
    details: dict[str, Any] = {f"{way}_first_ms": summary_ms(v) for way, v in firsts.items()}
    for name, percentile in (("p50", p50), ("p99", p99)):
        added = {
            way: ms(percentile(values) - percentile(firsts["direct"]))
            for way, values in firsts.items()
            if way != "direct"
        }
        if concurrency == 1 and name == "p50":
            value = added["gateway"]
            met = value < TARGET_ADDED_MS
            result.check(f"{label} {name}, gateway", value, "ms", f"< {TARGET_ADDED_MS:g} ms", met)
        else:
            result.add(f"{label} {name}, gateway", added["gateway"], "ms")
        if "bare" in added:
            result.add(f"{label} {name}, bare aiohttp relay", added["bare"], "ms")
            beyond = added["gateway"] - added["bare"]
            result.add(f"{label} {name}, gateway beyond the bare relay", beyond, "ms")
        if "litellm" in added:
            result.add(f"{label} {name}, LiteLLM", added["litellm"], "ms")
            meaningful = added["gateway"] >= 0 and added["litellm"] > 0
            share = ratio(added["gateway"], added["litellm"]) if meaningful else math.nan
            target = f"<= {TARGET_TO_LITELLM}"
            result.check(
                f"{door}: x{concurrency} {name}: gateway / LiteLLM",
                share,
                "x",
                target,
                share <= TARGET_TO_LITELLM,
            )
        details[f"added_{name}_ms"] = {way: round(value, 3) for way, value in added.items()}
    result.details[f"{door}_x{concurrency}"] = details


async def _held(stage: Stage, http: aiohttp.ClientSession, door: Door, errors: list[str]) -> float:
    """RSS with HELD_STREAMS streams stalled mid-stream, minus before, per stream (kB)."""
    url = stage.gateway.http_url + door.path
    stall = {"text_chunks": chunks(4), "stall_after": 1, "stall_seconds": 20.0}
    await _enqueue(stage, door, http, [stall] * HELD_STREAMS)
    await asyncio.sleep(0.5)
    before = stage.gateway.process.rss_kb()
    responses: list[aiohttp.ClientResponse] = []
    try:
        for _ in range(HELD_STREAMS):
            response = await http.post(
                url, json=door.gateway_body, headers=door.gateway_headers, timeout=TIMEOUT
            )
            responses.append(response)
        # Each has its first delta: the stream is open upstream and down, mid-message.
        for response in responses:
            seen = b""
            while door.marker not in seen:
                piece = await asyncio.wait_for(response.content.readany(), 10)
                if not piece:
                    raise ConnectionError("the stream ended before its first delta")
                seen += piece
        await asyncio.sleep(0.5)
        held = stage.gateway.process.rss_kb()
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as error:
        errors.append(f"held streams: {type(error).__name__}: {error}")
        return math.nan
    finally:
        for response in responses:
            response.close()  # the client leaves mid-stream; the gateway lets go
    return (held - before) / HELD_STREAMS
