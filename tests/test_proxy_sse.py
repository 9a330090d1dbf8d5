"""The SSE scanner finds the same events however the bytes are split into chunks."""

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentspace_gateway.proxy.sse import SseEvent, SseScanner

WANTED = ("message_start", "message_delta", "error")


def event(name: str, data: object, newline: str = "\n") -> bytes:
    text = f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}"
    return text.encode()


STREAM = b"".join(
    [
        event("message_start", {"message": {"usage": {"input_tokens": 10}}}),
        event("content_block_delta", {"delta": {"text": "a\n\nb"}}),
        event("ping", {}),
        event("message_delta", {"usage": {"output_tokens": 3}}, newline="\r\n"),
        b": a comment line\n\n",
        event("error", {"error": {"type": "overloaded_error"}}),
    ]
)
EXPECTED = [
    SseEvent("message_start", {"message": {"usage": {"input_tokens": 10}}}),
    SseEvent("message_delta", {"usage": {"output_tokens": 3}}),
    SseEvent("error", {"error": {"type": "overloaded_error"}}),
]


def scan(chunks: list[bytes]) -> list[SseEvent]:
    scanner = SseScanner(WANTED)
    return [found for chunk in chunks for found in scanner.feed(chunk)]


def test_whole() -> None:
    assert scan([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert scan([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    assert scan([STREAM[a:b] for a, b in itertools.pairwise(points)]) == EXPECTED


def test_data_that_is_not_json_is_kept_as_none() -> None:
    assert scan([b"event: error\ndata: {oops\n\n"]) == [SseEvent("error", None)]


def test_an_unfinished_event_waits_for_its_end() -> None:
    scanner = SseScanner(WANTED)
    assert scanner.feed(b'event: message_delta\ndata: {"usage": {}}\n') == []
    assert scanner.feed(b"\n") == [SseEvent("message_delta", {"usage": {}})]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_every_split_of_a_stream_in_each_line_ending_finds_both_events(newline: bytes) -> None:
    raw = (
        b'event: message_start\ndata: {"a":1}\n\nevent: message_delta\ndata: {"b":2}\n\n'
    ).replace(b"\n", newline)
    for cut in range(1, len(raw)):
        scanner = SseScanner({"message_start", "message_delta"})
        found = scanner.feed(raw[:cut]) + scanner.feed(raw[cut:])
        assert [(event.name, event.data) for event in found] == [
            ("message_start", {"a": 1}),
            ("message_delta", {"b": 2}),
        ], cut
