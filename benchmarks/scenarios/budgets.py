"""10. The budget check: what reserving before dispatch adds to a request's first byte.

``POST /v1/messages`` (a short stream) through the gateway, one request at a time, with no
budget, with a budget on the client key, and with a global budget, the three taking turns
round after round so the machine's load hits them alike. With a budget applying, each
request reads the budgets, estimates its input, and reserves in one write transaction
(summing the period's spend of the scope); its settle releases in another. The benchmark
home holds 100,000 seeded usage rows: a global budget sums all of them on every request.
Figures: time to first byte, p50 and p99, each budget minus none.
"""

import math
import os
import time
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import aiosqlite

from agentspace_gateway.storage import Database
from agentspace_gateway.storage.budgets import BudgetStore
from benchmarks.report import ScenarioResult
from benchmarks.stage import Stage
from benchmarks.stats import ms, p50, p99, summary_ms
from benchmarks.streams import MODEL, chunks

ROUNDS = 8
PER_ROUND = 25
# The proxy's own target for what the gateway adds to the first byte (scenario 9).
TARGET_ADDED_MS = 1.0
LIMIT = 10**18  # never reached: the check runs, nothing is refused
TIMEOUT = aiohttp.ClientTimeout(total=60)
WAYS = ("none", "client", "global")


async def _first_byte(http: aiohttp.ClientSession, stage: Stage) -> float:
    assert stage.client_key is not None
    body = {
        "model": MODEL,
        "max_tokens": 256,
        "stream": True,
        "messages": [{"role": "user", "content": "Go on."}],
    }
    headers = {"x-api-key": stage.client_key, "anthropic-version": "2023-06-01"}
    started = time.perf_counter()
    async with http.post(
        stage.gateway.http_url + "/v1/messages", json=body, headers=headers, timeout=TIMEOUT
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
        await response.content.readany()
        first = time.perf_counter() - started
        await response.read()
    return first


async def _set(store: BudgetStore, way: str, client_id: str) -> None:
    for kind, scope_id in (("client", client_id), ("global", "")):
        if kind == way:
            await store.set(kind, scope_id, "month", LIMIT)
        else:
            await store.remove(kind, scope_id, "month")


async def _bench_key_id(connection: aiosqlite.Connection) -> list[Any]:
    # The client key the HTTP door scenarios use (benchmarks/proxy_setup.py).
    async with connection.execute("SELECT id FROM client_keys WHERE name = 'bench'") as cursor:
        return list(await cursor.fetchall())


async def run(stage: Stage) -> ScenarioResult:
    result = ScenarioResult("budgets", "10 budget check (reserve before dispatch)")
    load_before = os.getloadavg()[0]
    database = await Database.open(stage.gateway.home / "agentspace.db")
    store = BudgetStore(database, ZoneInfo("UTC"))
    firsts: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        [[key_id]] = await database.read(_bench_key_id)
        client_id = str(key_id)
        async with aiohttp.ClientSession() as http:
            for number in range(-1, ROUNDS):  # round -1 warms each way up
                order = WAYS[number % 3 :] + WAYS[: number % 3]
                for way in order:
                    await _set(store, way, client_id)
                    await stage.fake.enqueue(http, [{"text_chunks": chunks(4)}] * PER_ROUND)
                    for _ in range(PER_ROUND):
                        first = await _first_byte(http, stage)
                        if number >= 0:
                            firsts[way].append(first)
        await _set(store, "none", client_id)
    finally:
        await database.close()
    for way in WAYS[1:]:
        for name, percentile in (("p50", p50), ("p99", p99)):
            added = ms(percentile(firsts[way]) - percentile(firsts["none"]))
            label = f"{way} budget: added to first byte {name}"
            if name == "p50":
                met = not math.isnan(added) and added < TARGET_ADDED_MS
                result.check(label, added, "ms", f"< {TARGET_ADDED_MS:g} ms", met)
            else:
                result.add(label, added, "ms")
    result.add("no budget: first byte p50", ms(p50(firsts["none"])), "ms")
    result.details["first_ms"] = {way: summary_ms(values) for way, values in firsts.items()}
    result.add("machine load average (1 min) before", load_before, digits=2)
    result.add("machine load average (1 min) after", os.getloadavg()[0], digits=2)
    return result
