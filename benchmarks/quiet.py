"""Waiting, between one way's burst and the next way's, for the servers to go quiet.

On two shared cores, the work a server does after its replies have gone out (LiteLLM's
logging and cost callbacks, the gateway's held audit rows, kept bodies and settles) runs
into whatever burst comes next, so the way that follows pays for it. With ways taking turns
in a fixed rotation one way follows the same other most of the time: in scenario 9 at 50
streams the bare relay always followed LiteLLM (before it, the gateway did in two rounds of
four), and in scenario 8 direct did in three rounds of four, which made every added time
there smaller. Waiting until the servers together use under a tenth of a core over a short
window starts every burst from a quiet machine, whichever way ran before it.
"""

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path

WINDOW_SECONDS = 0.02
QUIET_SHARE = 0.1  # of one core, all the watched processes together
MAX_WAIT_SECONDS = 3.0


def _family(pid: int) -> set[int]:
    """``pid`` and its descendants (LiteLLM's command may start its server as a child)."""
    found = {pid}
    waiting = [pid]
    while waiting:
        parent = waiting.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    waiting.append(child)
    return found


def cpu_ns(pids: Iterable[int]) -> int:
    """CPU time so far (ns) of every thread of these processes and their descendants."""
    total = 0
    for member in {member for pid in pids for member in _family(pid)}:
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError):
                continue  # a thread or process that ended meanwhile
    return total


async def quiet(pids: Iterable[int]) -> float:
    """Wait until, over one window, these processes used under ``QUIET_SHARE`` of a core
    together (at most ``MAX_WAIT_SECONDS``); the seconds waited."""
    watched = list(pids)
    began = time.monotonic()
    used = cpu_ns(watched)
    while time.monotonic() - began < MAX_WAIT_SECONDS:
        await asyncio.sleep(WINDOW_SECONDS)
        now = cpu_ns(watched)
        if now - used < QUIET_SHARE * WINDOW_SECONDS * 1e9:
            break
        used = now
    return time.monotonic() - began
