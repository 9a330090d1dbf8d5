"""Run the scenarios, print the table, write the JSON file.

python -m benchmarks                     # everything (what tox -e bench runs)
python -m benchmarks --only relay,ceiling
python -m benchmarks --profile relay     # py-spy samples the gateway during a scenario
"""

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from benchmarks.litellm_proxy import install as install_litellm
from benchmarks.processes import (
    Gateway,
    fake_upstream,
    gateway,
    prepare_home,
    raise_open_files_limit,
)
from benchmarks.proxy_setup import fake_openai, prepare_proxy
from benchmarks.report import ScenarioResult, machine, table, write_json
from benchmarks.scenarios import (
    budgets,
    ceiling,
    connections,
    context,
    latency,
    litellm,
    proxy,
    relay,
    reports,
)
from benchmarks.seed import seed
from benchmarks.stage import Stage

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = (
    *("reports", "context", "relay", "ceiling", "latency", "litellm", "proxy"),
    "connections",
    "budgets",
)
# Generous: a scenario takes 5 to 60 s on a quiet 2-core machine.
SCENARIO_TIMEOUT_SECONDS = 300
LOOP_TARGET_MS = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated scenarios of: {', '.join(SCENARIOS)}")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--profile",
        choices=[s for s in SCENARIOS if s != "connections"],
        help="sample the gateway with py-spy during one",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    chosen = SCENARIOS if not args.only else tuple(args.only.split(","))
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    if "litellm" in chosen or "proxy" in chosen:
        install_litellm()  # once; outside the scenario's time limit (pip may take minutes)
    info = machine()
    info["open_files_limit"] = raise_open_files_limit()
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="agentspace-bench-"))
    try:
        results = asyncio.run(_run(chosen, workdir, args.profile))
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results))
    write_json(args.output, results, started, info)
    print(f"\n{time.time() - started:.0f} s; figures in {args.output}")
    return 0


async def _run(chosen: tuple[str, ...], workdir: Path, profile: str | None) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    with fake_upstream(workdir) as fake, _fake_openai(chosen, workdir) as openai_url:
        home = workdir / "home"
        _progress("seeding 10,000 sessions and 100,000 usage rows")
        await asyncio.to_thread(prepare_home, home, fake.base_url, workdir)
        seeded = await asyncio.to_thread(seed, home / "agentspace.db")
        client_key = None
        if openai_url is not None:
            client_key = await asyncio.to_thread(
                prepare_proxy, home, fake.base_url, openai_url, workdir
            )
        with gateway(home, fake.base_url, workdir, "gateway") as served:
            async with aiohttp.ClientSession() as http:
                stage = Stage(workdir, fake, served, http, seeded, client_key, openai_url)
                for key in SCENARIOS:
                    if key not in chosen:
                        continue
                    served.process.check_alive()
                    _progress(f"scenario {key}")
                    began = time.monotonic()
                    with _profiling(served, key if key == profile else None):
                        result = await _scenario(key, stage, results)
                    result.seconds = time.monotonic() - began
                    results.append(result)
    loop = _loop_health(results)
    if loop is not None:
        results.append(loop)
    return results


async def _scenario(key: str, stage: Stage, earlier: list[ScenarioResult]) -> ScenarioResult:
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_SECONDS):
            if key == "reports":
                return await reports.run(stage)
            if key == "context":
                return await context.run(stage)
            if key == "relay":
                return await relay.run(stage)
            if key == "ceiling":
                relay_result = next((r for r in earlier if r.key == "relay"), None)
                rate = relay_result.details.get("best_rate_gateway") if relay_result else None
                return await ceiling.run(stage, rate)
            if key == "latency":
                return await latency.run(stage)
            if key == "litellm":
                return await litellm.run(stage)
            if key == "proxy":
                return await proxy.run(stage)
            if key == "budgets":
                return await budgets.run(stage)
            return await connections.run(stage)
    except Exception as error:
        failed = ScenarioResult(key, f"{key}: FAILED")
        failed.check("failed", 1, "", "runs", False, digits=0)
        failed.details["error"] = f"{type(error).__name__}: {error}"
        _progress(f"scenario {key} failed: {type(error).__name__}: {error}")
        return failed


@contextlib.contextmanager
def _fake_openai(chosen: tuple[str, ...], workdir: Path) -> Iterator[str | None]:
    """The fake OpenAI upstream (and so a client key) when an HTTP door scenario runs: serve
    reads its URL at start."""
    if "proxy" not in chosen and "budgets" not in chosen:
        yield None
        return
    with fake_openai(workdir) as url:
        yield url


def _loop_health(results: list[ScenarioResult]) -> ScenarioResult | None:
    watched = {r.key: r.details["loop"] for r in results if "loop" in r.details}
    if not watched:
        return None
    result = ScenarioResult("loop", "7 event-loop health")
    worst = 0.0
    for key, loop in watched.items():
        result.add(f"largest stall during {key}", loop["maxLagMs"], "ms", digits=1)
        result.add(f"ticks late >= 10 ms during {key}", loop["ticksLateMs"]["10"], digits=0)
        result.add(f"longest GC pause during {key}", loop["gcMaxPauseMs"], "ms", digits=1)
        worst = max(worst, loop["maxLagMs"])
    result.check(
        "largest stall, scenarios 2 and 3",
        worst,
        "ms",
        f"<= {LOOP_TARGET_MS:g} ms",
        worst <= LOOP_TARGET_MS,
        digits=1,
    )
    result.details = {"loop": watched}
    return result


@contextlib.contextmanager
def _profiling(served: Gateway, key: str | None) -> Iterator[None]:
    """py-spy samples the gateway process into results/profile-KEY.txt (collapsed stacks)."""
    if key is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    output = RESULTS / f"profile-{key}.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    sampler = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(served.process.pid), "--rate", "1000"),
            *("--format", "raw", "--nonblocking", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=30)
        if output.exists():
            _progress(f"profile of {key} in {output}; most time, self:")
            for line in _top(output):
                _progress(f"  {line}")


def _top(path: Path, count: int = 15) -> list[str]:
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        total += int(samples)
        own[stack.rsplit(";", 1)[-1]] += int(samples)
    return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]


def _progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
