"""Wrong bearer tokens from one address are slowed down: guessing a 256-bit token is hopeless,
but nothing should be allowed to try at wire speed, nor to flood the audit log while it does.

Only a *presented* token that is wrong counts: a request with no ``Authorization`` header
guesses nothing, and a web page cannot add that header to a cross-site request without a
CORS preflight the gateway never grants, so a page the user visits cannot lock them out.
Loopback counts like any other address: every local process shares it, which is exactly
where a guesser would run. A correct token does not clear the count, or a guesser sharing
127.0.0.1 with a real client would be forgiven by that client's every request.
"""

import collections
import ipaddress
import logging
import math
import time
from collections.abc import Callable

from aiohttp import web

from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

# Far more than the addresses a loopback gateway ever sees; a remote flood of fresh addresses
# evicts the stalest entries rather than growing memory.
MAX_TRACKED_ADDRESSES = 4096
# An IPv6 host usually owns a whole /64, and could pick a fresh address for every guess.
_IPV6_PREFIX = 64


def address_key(remote: str | None) -> str:
    """The unit a limit applies to: the IPv4 address, or the IPv6 /64 it sits in."""
    text = (remote or "").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


class FailedAuthLimiter:
    """At most ``limit`` wrong tokens per address in any ``window_seconds``."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._max_addresses = max_addresses
        self._clock = clock
        # address -> times of its recent failures, oldest first; the dict is ordered by each
        # address's latest failure, so the stalest entries are always at the front.
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, remote: str | None) -> float | None:
        """Seconds until ``remote`` may try again, or None when it may try now."""
        now = self._clock()
        failures = self._recent(address_key(remote), now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(failures[0] + self.window - now, 0.001)

    def failed(self, remote: str | None) -> bool:
        """Count a wrong token; True when this one used up the address's allowance."""
        now = self._clock()
        key = address_key(remote)
        failures = self._recent(key, now)
        if failures is None:
            failures = collections.deque(maxlen=self.limit)
        failures.append(now)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
        return len(failures) >= self.limit

    def _recent(self, key: str, now: float) -> collections.deque[float] | None:
        """The failures of ``key`` still inside the window, after dropping stale addresses."""
        horizon = now - self.window
        # The dict is ordered by latest failure, so whole stale entries sit at the front:
        # pruning costs O(1) amortised per call and memory follows recent activity only.
        while self._failures:
            oldest_key = next(iter(self._failures))
            if self._failures[oldest_key][-1] > horizon:
                break
            del self._failures[oldest_key]
        failures = self._failures.get(key)
        if failures is not None:
            while failures[0] <= horizon:
                failures.popleft()
        return failures


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def too_many_failures(remote: str | None, seconds: float) -> web.Response:
    return json_error(
        429,
        ErrorCode.TOO_MANY_FAILED_ATTEMPTS,
        f"Too many wrong tokens from {remote or 'this address'}; try again in "
        f"{max(1, math.ceil(seconds))} s with the right one (see it with: "
        "agentspace-gateway token show).",
        headers=retry_after_header(seconds),
    )


async def count_failure(
    limiter: FailedAuthLimiter, keys: AuditedKeys, actor: Actor, where: str
) -> None:
    """Count a wrong token; the one that uses up the allowance is logged and audited once."""
    if not limiter.failed(actor.remote_addr):
        return
    seconds = limiter.retry_after(actor.remote_addr) or limiter.window
    detail = (
        f"{where}: {limiter.limit} wrong tokens within {limiter.window:g} s; "
        f"refusing {address_key(actor.remote_addr)} for {math.ceil(seconds)} s"
    )
    log.warning("rate limiting token attempts: %s", detail)
    await keys.record(AuditEvent.ACCESS_RATE_LIMITED, actor, detail=detail)
