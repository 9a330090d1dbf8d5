"""An opt-in watch on the event loop's stalls, for benchmarks (``server.loop_monitor``).

A timer asks to run every 10 ms; how late it actually runs is how long the loop was busy
with something else, which is exactly the wait any frame, timer or reply that became ready
meanwhile also suffered. A stall of S ms shows up as a lateness between S - 10 and S, so
the largest lateness is a lower bound on the largest stall, at most one period short.

It costs one callback per period (about 100 a second, a few microseconds each), so it is
off by default; when on (``loop_monitor_setup``), ``GET /debug/loop`` reports the figures
since the last ``POST /debug/loop/reset``.
"""

import asyncio
import gc
import time

PERIOD_SECONDS = 0.010
# Lateness buckets, in ms: how many ticks were at least this late.
THRESHOLDS_MS = (1, 5, 10, 20, 50, 100)


class LoopMonitor:
    def __init__(self, period: float = PERIOD_SECONDS) -> None:
        self._period = period
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._gc_started = 0.0
        self.reset()

    def reset(self) -> None:
        self._since = time.monotonic()
        self._ticks = 0
        self._max_lag = 0.0
        self._total_lag = 0.0
        self._late = dict.fromkeys(THRESHOLDS_MS, 0)
        # The cyclic garbage collector stops everything while it runs: one cause of stalls
        # that a profile of the code does not show, so its pauses are timed apart.
        self._gc_runs = 0
        self._gc_total = 0.0
        self._gc_max = 0.0
        self._gc_max_by_generation = [0.0, 0.0, 0.0]
        self._gc_runs_by_generation = [0, 0, 0]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self._period
        self._handle = loop.call_at(self._due, self._tick)
        gc.callbacks.append(self._gc_phase)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._gc_phase in gc.callbacks:
            gc.callbacks.remove(self._gc_phase)

    def _gc_phase(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_started
        generation = info.get("generation", 2)
        self._gc_runs += 1
        self._gc_total += pause
        self._gc_max = max(self._gc_max, pause)
        self._gc_runs_by_generation[generation] += 1
        self._gc_max_by_generation[generation] = max(self._gc_max_by_generation[generation], pause)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        lag = max(0.0, now - self._due)
        self._ticks += 1
        self._total_lag += lag
        if lag > self._max_lag:
            self._max_lag = lag
        lag_ms = lag * 1000
        for threshold in THRESHOLDS_MS:
            if lag_ms >= threshold:
                self._late[threshold] += 1
        # From now, not from the missed due time: one long stall is one late tick, not a
        # burst of catch-up ticks that would each look late.
        self._due = now + self._period
        self._handle = loop.call_at(self._due, self._tick)

    def snapshot(self) -> dict[str, object]:
        return {
            "periodMs": self._period * 1000,
            "seconds": round(time.monotonic() - self._since, 3),
            "ticks": self._ticks,
            "maxLagMs": round(self._max_lag * 1000, 3),
            "meanLagMs": round(self._total_lag / self._ticks * 1000, 3) if self._ticks else 0.0,
            "ticksLateMs": {str(threshold): count for threshold, count in self._late.items()},
            "gcRuns": self._gc_runs,
            "gcTotalMs": round(self._gc_total * 1000, 3),
            "gcMaxPauseMs": round(self._gc_max * 1000, 3),
            "gcRunsByGeneration": list(self._gc_runs_by_generation),
            "gcMaxPauseMsByGeneration": [round(p * 1000, 3) for p in self._gc_max_by_generation],
        }
