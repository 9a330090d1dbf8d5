"""An incremental reader of Server-Sent Events that picks out only the events it is asked for.

The relay forwards every byte as it arrives; this only looks over them for what billing
needs. Chunks split events anywhere (inside a line, between ``\\r`` and ``\\n``), so the
bytes after the last complete event wait for the next chunk. The JSON of an event is parsed
only for the names wanted: text deltas, most of a stream, are skipped by their name alone.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from attrs import frozen

# A single event larger than this is not one billing needs (usage events are a few hundred
# bytes); past it the pending bytes are dropped rather than held without bound.
MAX_PENDING_BYTES = 4 * 1024 * 1024


@frozen
class SseEvent:
    name: str
    data: Any  # the parsed JSON, or None when it was not JSON


class SseScanner:
    def __init__(self, wanted: Collection[str]) -> None:
        self._wanted = frozenset(wanted)
        self._pending = bytearray()
        # Where the search for the next blank line resumes: the bytes before it were seen.
        self._searched = 0
        # Whether the stream ever used \r: until it does, only "\n\n" can end an event.
        self._carriage_returns = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The wanted events completed by this chunk, in order."""
        pending = self._pending
        pending += chunk
        if not self._carriage_returns and b"\r" in chunk:
            self._carriage_returns = True
        found: list[SseEvent] = []
        start = 0
        while True:
            end, gap = event_end(
                pending, max(start, self._searched - 3), carriage_returns=self._carriage_returns
            )
            if end < 0:
                break
            event = self._parse(bytes(pending[start:end]))
            if event is not None:
                found.append(event)
            start = end + gap
        del pending[:start]
        self._searched = len(pending)
        if len(pending) > MAX_PENDING_BYTES:
            pending.clear()
            self._searched = 0
        return found

    def _parse(self, block: bytes) -> SseEvent | None:
        name = "message"
        data: list[bytes] = []
        for raw in block.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            field, _, value = raw.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"event":
                name = value.decode("utf-8", "replace")
                if name not in self._wanted:
                    return None
            elif field == b"data":
                data.append(value)
        if name not in self._wanted:
            return None
        try:
            parsed = json.loads(b"\n".join(data))
        except ValueError:
            parsed = None
        return SseEvent(name, parsed)


def event_end(buffer: bytearray, start: int, *, carriage_returns: bool) -> tuple[int, int]:
    """Where the first event at or after ``start`` ends, and the length of the blank line
    that ends it; (-1, 0) when no complete event is there yet.

    A separator the stream never uses would be searched for to the end of the buffer once
    per event: with many events in one chunk that made the scan quadratic (165 us an event
    at 1,000 events a chunk, the benchmark's profile). Streams without \r look for "\n\n"."""
    if not carriage_returns:
        at = buffer.find(b"\n\n", start)
        return (at, 2) if at >= 0 else (-1, 0)
    best, gap = -1, 0
    for separator in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.find(separator, start)
        if at >= 0 and (best < 0 or at < best):
            best, gap = at, len(separator)
    return best, gap
