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
        names: list[str] = []
        datas: list[bytes] = []
        start = 0
        while True:
            end, gap = event_end(
                pending, max(start, self._searched - 3), carriage_returns=self._carriage_returns
            )
            if end < 0:
                break
            found = self._wanted_data(pending, start, end)
            if found is not None:
                names.append(found[0])
                datas.append(found[1])
            start = end + gap
        del pending[:start]
        self._searched = len(pending)
        if len(pending) > MAX_PENDING_BYTES:
            pending.clear()
            self._searched = 0
        return [SseEvent(name, data) for name, data in zip(names, json_values(datas), strict=True)]

    def _wanted_data(self, pending: bytearray, start: int, end: int) -> tuple[str, bytes] | None:
        """The name and data of the event at ``pending[start:end]``, if its name is wanted."""
        # Anthropic's every event is "event: NAME\ndata: JSON": read without splitting lines.
        line_end = pending.find(b"\n", start, end)
        if (
            pending.startswith(b"event: ", start)
            and pending.startswith(b"data: ", line_end + 1)
            and pending.find(b"\n", line_end + 1, end) < 0
            and pending.find(b"\r", start, end) < 0
        ):
            name = pending[start + 7 : line_end].decode("utf-8", "replace")
            if name not in self._wanted:
                return None
            return name, bytes(pending[line_end + 7 : end])
        return self._parse_lines(bytes(pending[start:end]))

    def _parse_lines(self, block: bytes) -> tuple[str, bytes] | None:
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
        return name, b"\n".join(data)


def json_values(datas: list[bytes]) -> list[Any]:
    """Each piece of data parsed as JSON (None where it is not JSON).

    Parsed as one JSON array when each piece is one object: one call into the parser for all
    the events of a read, not one each, which at tens of thousands of events a second is
    most of the relay's time. The count must come out right, or each is parsed alone."""
    if len(datas) < 2:
        return [_json(data) for data in datas]
    if all(data[:1] == b"{" and data[-1:] == b"}" for data in datas):
        try:
            parsed = json.loads(b"[" + b",".join(datas) + b"]")
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and len(parsed) == len(datas):
            return parsed
    return [_json(data) for data in datas]


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


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
