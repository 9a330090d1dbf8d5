"""A warning that can fire thousands of times a second, logged at most once per interval.

Under descriptor exhaustion asyncio logged a traceback per failed accept, 2,000 to 11,000 a
second (877 MB of log in 4 minutes): the log filled the disk the database needs. Here the
first occurrence is logged at once, the rest of the interval only counted, and one line at
the interval's end says how many there were.
"""

import asyncio
import logging
import time


class ThrottledWarning:
    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._log = logger
        self._interval = interval
        self._window_end = 0.0
        self._suppressed = 0
        self._last = ""
        self._flush_handle: asyncio.TimerHandle | None = None

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now >= self._window_end and self._suppressed == 0:
            self._window_end = now + self._interval
            self._log.warning("%s", message)
            return
        self._suppressed += 1
        self._last = message
        if self._flush_handle is None:
            delay = max(0.0, self._window_end - now)
            self._flush_handle = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        """Log the count of what the current interval held back, and start a new one."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._suppressed == 0:
            return
        self._log.warning(
            "%s (%d times in the last %.0f s)", self._last, self._suppressed, self._interval
        )
        self._suppressed = 0
        self._window_end = time.monotonic() + self._interval
