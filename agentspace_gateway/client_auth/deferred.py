"""Work a proxied request owes that can wait until its reply has begun.

On the way to the first byte the gateway's event loop and two cores are shared with the
upstream request in flight; work done beside it (the key use's audit row and the session's
activity mark through the write queue, the kept request body's gzip in a thread) took the
GIL and a core from it. Measured
in scenario 9 at one stream: the audit row's write alone put 0.4 ms p50 on the upstream
request's time to its headers. Such work is held here and run once the first chunk has gone
to the client, or when the request ends whatever way it ends, so none of it is lost.
"""

from __future__ import annotations

from collections.abc import Callable


class Deferred:
    def __init__(self) -> None:
        self._calls: list[Callable[[], None]] = []

    def add(self, call: Callable[[], None]) -> None:
        self._calls.append(call)

    def run(self) -> None:
        """Run what is held, in the order it came; each once, however often this is called."""
        calls, self._calls = self._calls, []
        for call in calls:
            call()
