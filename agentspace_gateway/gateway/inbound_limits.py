"""What one connection may ask of the gateway: a message rate, and handlers running at once.

A frame over the rate is answered ``RATE_LIMITED`` straight away and never reaches a handler,
so one client flooding its socket costs the others almost nothing. Handlers still running
are capped too, so a flood of slow requests cannot grow tasks and memory without bound: a
frame past the cap is refused the same way. It is not left unread instead, because reading
on is what lets a close (which cancels the running handlers) or a ``chat.cancel`` through.
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

    @classmethod
    def from_config(cls, config: GatewayConfig) -> "InboundLimits":
        return cls(config.messages_per_second, config.message_burst, config.max_inflight_messages)


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
