"""A time range cut into whole hours, summed from ``usage_hourly``, and the partial hours at
its two ends, summed from the ledger itself (migration 0003 says why).

Times are the ledger's own text form, ``2026-11-28T09:05:00.000Z``; anything else (a
caller's own ``2026-11-28``) is simply read from the ledger, as every range once was.
"""

import re
from datetime import UTC, datetime, timedelta

import attrs

_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@attrs.frozen
class SplitRange:
    # Whole hours from ``first_hour`` (inclusive) to ``end_hour`` (exclusive); None: open.
    first_hour: str | None
    end_hour: str | None
    # [since, until) ranges of ledger rows outside those hours; None: open.
    edges: list[tuple[str | None, str | None]]


def hour_start(hour: str) -> str:
    return f"{hour}:00:00.000Z"


def split(since: str | None, until: str | None) -> SplitRange | None:
    """Whole hours and edges for [since, until), or None to read it all from the ledger."""
    if not all(bound is None or _CANONICAL.fullmatch(bound) for bound in (since, until)):
        return None
    first_hour = None if since is None else _hour_at_or_after(since)
    end_hour = None if until is None else until[:13]
    if since is not None and first_hour is None:
        return None  # within the last hour of year 9999: nothing whole to read
    if first_hour is not None and end_hour is not None and first_hour >= end_hour:
        return None  # no whole hour inside: a short range, read from the ledger
    edges: list[tuple[str | None, str | None]] = []
    if since is not None and first_hour is not None and hour_start(first_hour) != since:
        edges.append((since, hour_start(first_hour)))
    if until is not None and end_hour is not None and hour_start(end_hour) != until:
        edges.append((hour_start(end_hour), until))
    return SplitRange(first_hour, end_hour, edges)


def _hour_at_or_after(moment: str) -> str | None:
    hour = moment[:13]
    if hour_start(hour) == moment:
        return hour
    start = datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]), tzinfo=UTC)
    try:
        following = start + timedelta(hours=1)
    except OverflowError:
        return None
    return f"{following.year:04d}-{following.month:02d}-{following.day:02d}T{following.hour:02d}"
