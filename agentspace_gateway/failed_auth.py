"""Wrong credentials are slowed down and their audit rows aggregated, without ever locking
out the right credential.

On loopback every local process shares the address, and any of 127.0.0.0/8 is a source
address a local process can pick: counting per address let one process cycle through
addresses and be checked at wire speed (2,000 wrong tokens, 535 a second, 600 audit rows a
second), while 10 wrong tokens from anyone locked the real user out for a minute. So:

- **The right credential always gets in.** Every door checks the presented credential
  first (a constant-time compare, ``tokens.token_matches``; a hash look-up for client
  keys) and consults the limiter only for a wrong one. Checking first leaks nothing: a
  right and a wrong credential cost the same check whether or not a lockout is on, and the
  answer (200 against 401/429) says only what it says without a lockout. What a lockout
  saves is the rest of the refusal: the audit row, the log line.
- **Per credential prefix** (its first characters): a client that keeps sending one stale
  key or token is answered 429 after ``limit`` in ``window`` seconds, and only it.
- **Globally**: an attacker chooses every character, so fresh prefixes evade a per-prefix
  count; past ``global_per_second`` wrong credentials in the last second, any further wrong
  one is answered 429 too.
- **Audit rows are aggregated**: at most one row per prefix per ``audit_seconds`` and at
  most ``audit_rows`` individual rows in that time overall; every other failure is counted
  into one summary row, written at the first such failure and then at most once per
  ``audit_seconds``, and once more at shutdown for what is still counted.
  2,000 wrong tokens make a few dozen rows, not 2,000.

Only a *presented* credential that is wrong counts: a request with none guesses nothing
and is never refused 429 (it shares the audit budget only). A prefix is logged as a short
hash, never as the credential's characters, except a client key's public ``asg_`` prefix,
which ``clients list`` shows anyway.
"""

import collections
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from attrs import frozen

from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

# Far more than the prefixes honest clients ever present; a flood of fresh prefixes evicts
# the stalest entries rather than growing memory.
MAX_TRACKED_PREFIXES = 4096
# A client key's public part ("asg_" and 6 characters, shown by `clients list`); of any
# other credential, the first 8 characters.
CLIENT_KEY_PREFIX = "asg_"
CLIENT_KEY_PREFIX_CHARS = 10
PREFIX_CHARS = 8
AUDIT_SECONDS = 60.0
AUDIT_ROWS = 30
NO_CREDENTIAL = "(none)"
SUMMARY_LABELS = 5


def credential_prefix(credential: str | None) -> str:
    """The unit a per-prefix limit applies to."""
    if not credential:
        return NO_CREDENTIAL
    if credential.startswith(CLIENT_KEY_PREFIX):
        return credential[:CLIENT_KEY_PREFIX_CHARS]
    return credential[:PREFIX_CHARS]


def prefix_label(prefix: str) -> str:
    """How a prefix appears in logs and the audit log: never a secret's characters."""
    if prefix == NO_CREDENTIAL or (
        prefix.startswith(CLIENT_KEY_PREFIX) and len(prefix) == CLIENT_KEY_PREFIX_CHARS
    ):
        return prefix
    return "#" + hashlib.sha256(prefix.encode("utf-8", "replace")).hexdigest()[:10]


@frozen
class Verdict:
    """What to do with one wrong (or missing) credential."""

    prefix: str  # its label, for logs and the audit log
    refused_for: float | None  # answer 429 with this Retry-After; None: answer 401
    audit: bool  # write this failure's own audit row
    summary: str | None  # an aggregated row to write now, if one is due


class FailedAuthLimiter:
    """At most ``limit`` wrong credentials per prefix in any ``window_seconds``, and at most
    ``global_per_second`` in any second overall."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        global_per_second: int = 10,
        audit_seconds: float = AUDIT_SECONDS,
        audit_rows: int = AUDIT_ROWS,
        max_prefixes: int = MAX_TRACKED_PREFIXES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.global_per_second = global_per_second
        self._audit_seconds = audit_seconds
        self._audit_rows = audit_rows
        self._max_prefixes = max_prefixes
        self._clock = clock
        # prefix -> times of its recent failures, oldest first; the dict is ordered by each
        # prefix's latest failure, so the stalest entries are always at the front.
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )
        self._recent_global: collections.deque[float] = collections.deque(maxlen=global_per_second)
        # The audit budget: the prefixes with a row in this audit period, and the rest.
        self._audit_period_began: float | None = None
        self._audited: set[str] = set()
        self._unaudited = 0
        self._unaudited_prefixes: set[str] = set()
        self._refused = 0
        self._last_summary: float | None = None

    def __len__(self) -> int:
        return len(self._failures)

    def wrong(self, credential: str | None) -> Verdict:
        """Judge a credential the door found wrong (None: none was presented). Call it only
        after the check, so a lockout can never apply to the right one."""
        now = self._clock()
        prefix = credential_prefix(credential)
        refused_for = None if credential is None else self._count(prefix, now)
        if refused_for is not None:
            self._refused += 1
        audit = refused_for is None and self._audit_budget(prefix, now)
        if not audit:
            self._unaudited += 1
            if len(self._unaudited_prefixes) < self._max_prefixes:
                self._unaudited_prefixes.add(prefix)
        return Verdict(prefix_label(prefix), refused_for, audit, self._summary(now))

    def _count(self, prefix: str, now: float) -> float | None:
        """Count a failure; seconds to refuse it for when a limit was already used up."""
        recent = self._recent_global
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        failures = self._recent(prefix, now)
        if failures is not None and len(failures) >= self.limit:
            return max(failures[0] + self.window - now, 0.001)
        if len(recent) >= self.global_per_second:
            return max(recent[0] + 1.0 - now, 0.001)
        recent.append(now)
        if failures is None:
            failures = collections.deque(maxlen=self.limit)
        failures.append(now)
        self._failures[prefix] = failures
        self._failures.move_to_end(prefix)
        while len(self._failures) > self._max_prefixes:
            self._failures.popitem(last=False)
        return None

    def _recent(self, prefix: str, now: float) -> collections.deque[float] | None:
        """The failures of ``prefix`` still inside the window, after dropping stale ones."""
        horizon = now - self.window
        # Ordered by latest failure: whole stale entries sit at the front, so pruning costs
        # O(1) amortised per call and memory follows recent activity only.
        while self._failures:
            oldest = next(iter(self._failures))
            if self._failures[oldest][-1] > horizon:
                break
            del self._failures[oldest]
        failures = self._failures.get(prefix)
        if failures is not None:
            while failures[0] <= horizon:
                failures.popleft()
        return failures

    def _audit_budget(self, prefix: str, now: float) -> bool:
        began = self._audit_period_began
        if began is None or now - began >= self._audit_seconds:
            self._audit_period_began, self._audited = now, set()
        if prefix in self._audited or len(self._audited) >= self._audit_rows:
            return False
        self._audited.add(prefix)
        return True

    def pending_summary(self) -> str | None:
        """The aggregated row of every failure counted since the last one, due or not: what
        the shutdown writes, as the next failure that would have written it never comes."""
        return self._summary(self._clock(), due=False)

    def _summary(self, now: float, *, due: bool = True) -> str | None:
        last = self._last_summary
        if not self._unaudited:
            return None
        if due and last is not None and now - last < self._audit_seconds:
            return None
        prefixes = len(self._unaudited_prefixes)
        some = ", ".join(sorted(map(prefix_label, self._unaudited_prefixes))[:SUMMARY_LABELS])
        text = (
            f"{self._unaudited} more wrong or missing credentials from "
            f"{prefixes}{'+' if prefixes >= self._max_prefixes else ''} prefixes ({some}"
            f"{', ...' if prefixes > SUMMARY_LABELS else ''}), "
            f"{self._refused} of them refused 429 without a row of their own"
            + ("" if last is None else f", in the last {now - last:.0f} s")
            + f"; limits: {self.limit} per prefix per {self.window:g} s, "
            f"{self.global_per_second} a second overall"
        )
        self._last_summary = now
        self._unaudited, self._refused = 0, 0
        self._unaudited_prefixes = set()
        return text


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def too_many_failures(seconds: float) -> web.Response:
    return json_error(
        429,
        ErrorCode.TOO_MANY_FAILED_ATTEMPTS,
        f"Too many wrong tokens; try again in {max(1, math.ceil(seconds))} s, or now with "
        "the right one (see it with: agentspace-gateway token show): the right token is "
        "never refused.",
        headers=retry_after_header(seconds),
    )


async def judge_wrong(
    limiter: FailedAuthLimiter,
    credential: str | None,
    *,
    where: str,
    reason: str,
    record: Callable[[str, str], Awaitable[object]],
) -> float | None:
    """Judge a wrong (or missing) credential and write the audit rows the limiter allows:
    ``record(kind, detail)`` with kind "denied" (this failure's row) or "rate_limited" (the
    aggregated one). Returns the seconds to refuse it for (429), or None (401)."""
    verdict = limiter.wrong(credential)
    if verdict.audit:
        await record("denied", f"{where}: {reason}" if where else reason)
    if verdict.summary is not None:
        summary = f"{where}: {verdict.summary}" if where else verdict.summary
        log.warning("wrong credentials: %s", summary)
        await record("rate_limited", summary)
    return verdict.refused_for


async def write_pending_summary(
    limiter: FailedAuthLimiter, record: Callable[[str], Awaitable[object]]
) -> None:
    """At shutdown: ``record(detail)`` the aggregated row of the failures counted since the
    last one, if there are any."""
    summary = limiter.pending_summary()
    if summary is not None:
        summary = f"at shutdown: {summary}"
        log.warning("wrong credentials: %s", summary)
        await record(summary)
