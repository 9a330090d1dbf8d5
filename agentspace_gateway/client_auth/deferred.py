"""Work a proxied request owes that can wait until its reply has begun.

On the way to the first byte the gateway's event loop and two cores are shared with the
upstream request in flight; work done beside it (the key use's audit row and the session's
activity mark through the write queue, the kept request body's gzip in a thread) took the
GIL and a core from it. Measured
in scenario 9 at one stream: the audit row's write alone put 0.4 ms p50 on the upstream
request's time to its headers. Such work is held here and run once the first chunk has gone
to the client, or when the request ends whatever way it ends, so none of it is lost.

Nor does it run beside the other requests' ways to their first bytes (``HeldWork``, one for
both doors): while any request is still on its way to its first byte, what the others
released is held, and it runs once none is, or ``MAX_HOLD_SECONDS`` after it was first held,
so that a steady stream of starts holds nothing for long. When 50 requests start together,
the work of the first replies would otherwise run between the later ones' first bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# The longest any held work waits for the doors to have no request before its first byte.
MAX_HOLD_SECONDS = 0.1


class HeldWork:
    """One per app: the deferred work of requests whose replies have begun, held while any
    other request is still on its way to its first byte."""

    def __init__(self, max_hold_seconds: float | None = None) -> None:
        self._max_hold_seconds = MAX_HOLD_SECONDS if max_hold_seconds is None else max_hold_seconds
        self._before_first_byte = 0
        self._held: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None

    def deferred(self) -> Deferred:
        """A request's own ``Deferred``: the request counts as on its way to its first byte
        until that is run."""
        self._before_first_byte += 1
        return Deferred(self)

    def begun(self, calls: list[Callable[[], None]]) -> None:
        """A request's reply has begun (or the request ended first): it is no longer on its
        way to its first byte, and its calls are held."""
        self._before_first_byte -= 1
        self.hold(calls)

    def hold(self, calls: list[Callable[[], None]]) -> None:
        """Hold ``calls``, or run everything held if no request is before its first byte."""
        self._held.extend(calls)
        if self._before_first_byte <= 0:
            self.run()
        elif self._held and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._max_hold_seconds, self.run)

    def run(self) -> None:
        """Run everything held, now (also when the app closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        _run_each(held)


class Deferred:
    """``held``: where the calls go once run, to wait for the other requests' first bytes;
    None runs them at once."""

    def __init__(self, held: HeldWork | None = None) -> None:
        self._calls: list[Callable[[], None]] = []
        self._held = held
        self._begun = False

    def add(self, call: Callable[[], None]) -> None:
        self._calls.append(call)

    def run(self) -> None:
        """Run (or hand to ``held``) what is held, in the order it came; each once, however
        often this is called. What is added after the first call runs at the next one."""
        calls, self._calls = self._calls, []
        if self._held is None:
            _run_each(calls)
        elif self._begun:
            self._held.hold(calls)
        else:
            self._begun = True
            self._held.begun(calls)


def _run_each(calls: list[Callable[[], None]]) -> None:
    # Run for whichever request's first byte came last (or from a timer): one call's failure
    # is logged, and neither stops the others nor reaches that request.
    for call in calls:
        try:
            call()
        except Exception:
            log.exception("deferred work of a proxied request failed")
