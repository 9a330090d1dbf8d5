"""What one connection may ask of the gateway: a message rate, and handlers running at once.

A frame over the rate is answered ``RATE_LIMITED`` straight away and never reaches a handler,
so one client flooding its socket costs the others almost nothing. Handlers still running
are capped too, so a flood of slow requests cannot grow tasks and memory without bound: a
frame past the cap is refused the same way. It is not left unread instead, because reading
on is what lets a close (which cancels the running handlers) or a ``chat.cancel`` through.

Frames larger than ``max_frame_bytes`` close the connection (1009); a frame of exactly that
size is read. aiohttp refuses a frame *of* its ``max_msg_size`` (``>=``, in its reader), so
it is given one byte more, and the one compressed message that then gets through, of
exactly ``max_frame_bytes + 1`` once inflated, is caught by ``frame_fits``.
"""

import time
from collections.abc import Callable

from attrs import frozen

from agentspace_gateway.config import GatewayConfig


@frozen
class InboundLimits:
    messages_per_second: float
    burst: int
    max_inflight: int
    max_frame_bytes: int

    @classmethod
    def from_config(cls, config: GatewayConfig) -> "InboundLimits":
        return cls(
            config.messages_per_second,
            config.message_burst,
            config.max_inflight_messages,
            config.max_frame_bytes,
        )


def aiohttp_max_msg_size(max_frame_bytes: int) -> int:
    """What to tell aiohttp so that a frame of ``max_frame_bytes`` is read, not refused."""
    return max_frame_bytes + 1


def frame_fits(data: str | bytes, max_frame_bytes: int) -> bool:
    # A character is at most 4 bytes: short frames (nearly all) need no encoding to know.
    if len(data) * 4 <= max_frame_bytes:
        return True
    if isinstance(data, bytes):
        return len(data) <= max_frame_bytes
    size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return size <= max_frame_bytes


class TokenBucket:
    """``burst`` messages at once, refilled at ``rate`` a second."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> float:
        """Spend one token: 0.0 when granted, else the seconds until one will be there."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
