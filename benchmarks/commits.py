"""Concurrent writes through `Database`, against the same module at another git revision.

python -m benchmarks.commits --against REV
# the one-transaction-per-write version it was measured against (docs/performance.md):
python -m benchmarks.commits --against \\
    "$(git log -1 --format=%h --grep='one transaction per write, to measure')"

Each round opens a fresh migrated database on disk (WAL, synchronous=FULL, as `serve` has
it) and starts WRITERS coroutines at once, each making WRITES writes one after another (a
chat makes about four: its message, the usage row opened, the reply, the usage settled),
each write one row of the audit log; with --spread S each writer pauses at random before
each write, its writes taking about S seconds in all, as the writes of 50 chats arrive in
the latency scenario (S = 0.5) rather than all at once. The two versions take turns, round
by round, so a burst of load on the shared machine hits both. Printed per version: the
range over rounds of the wall time for all writes, and of the p50 and p99 of one write's
latency.
"""

import argparse
import asyncio
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiosqlite

from agentspace_gateway.storage import apply_migrations
from agentspace_gateway.storage import database as current
from benchmarks.stats import p50, p99

ROOT = Path(__file__).resolve().parent.parent
MODULE_PATH = "agentspace_gateway/storage/database.py"
INSERT = "INSERT INTO audit_log (event, created_at) VALUES (?, '2026-12-06T12:00:00.000Z')"


def _module_at(revision: str, directory: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:{MODULE_PATH}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / f"database_{revision}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"database_{revision}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inserting(event: str) -> Callable[[aiosqlite.Connection], Awaitable[object]]:
    async def insert(connection: aiosqlite.Connection) -> object:
        return await connection.execute(INSERT, (event,))

    return insert


async def _round(
    module: ModuleType, path: Path, writers: int, writes: int, spread: float
) -> dict[str, float]:
    db: Any = await module.Database.open(path)
    try:
        await apply_migrations(db)
        latencies: list[float] = []

        async def writer(n: int) -> None:
            pace = random.Random(n)
            for k in range(writes):
                if spread:
                    await asyncio.sleep(pace.random() * spread / writes)
                began = time.perf_counter()
                await db.write(_inserting(f"w{n}-{k}"))
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        wall = time.perf_counter() - began
        rows = await db.fetchall("SELECT count(*) FROM audit_log")
        assert rows[0][0] == writers * writes, "every write must land"
    finally:
        await db.close()
    latencies.sort()
    return {
        "wall_ms": wall * 1000,
        "p50_ms": p50(latencies) * 1000,
        "p99_ms": p99(latencies) * 1000,
    }


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="agentspace-commits-") as scratch:
        directory = Path(scratch)
        versions = {"current": current, args.against: _module_at(args.against, directory)}
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for number in range(args.rounds):
            # Alternate which goes first, so neither always follows the other's fsyncs.
            order = list(versions) if number % 2 == 0 else list(versions)[::-1]
            for name in order:
                path = directory / f"{name}-{number}.db"
                figure = await _round(versions[name], path, args.writers, args.writes, args.spread)
                figures[name].append(figure)
        print(
            f"{args.writers} writers x {args.writes} writes, spread over {args.spread} s, "
            f"{args.rounds} rounds each, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        for name, rounds in figures.items():
            cells = []
            for key in ("wall_ms", "p50_ms", "p99_ms"):
                values = sorted(r[key] for r in rounds)
                cells.append(f"{key[:-3]} {values[0]:.1f}-{values[-1]:.1f} ms")
            print(f"  {name:>10}: " + ", ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.commits", description=__doc__)
    parser.add_argument("--against", required=True, help="a git revision of the module")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--writes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="seconds over which each writer's writes are spread (random pauses); 0: at once",
    )
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
