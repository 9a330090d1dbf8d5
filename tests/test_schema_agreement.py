"""The decoder and the published JSON Schema accept and refuse the same client frames.

Hypothesis starts from a valid frame of each message type, the tests' inline plugins'
included, and mutates a few keys: null, empty, blank, too long, out of range, the wrong
type, a key removed or one added. The codec (what the gateway decodes with) and jsonschema
(what a client generated from ``protocol --json-schema`` would check) must give one verdict.
"""

import importlib.metadata
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentspace_gateway.cli.protocol import client_classes
from agentspace_gateway.handler_registry import ENTRY_POINT_GROUP, load_registry
from agentspace_gateway.protocol.wire import DecodeError, WireCodec

from schema_check import CLIENT, TEST_PLUGIN_TARGETS, FrameSchema, published_schema

SESSION = "V1StGXR8_Z5jdHi6B-myT"
# One valid frame of each client message type: what the mutations start from.
BASES: list[dict[str, Any]] = [
    {"type": "ping", "id": "p1"},
    {"type": "auth", "id": "a1", "token": "secret"},
    {"type": "chat.send", "id": "t1", "content": "hello", "sessionId": SESSION, "model": "m-1"},
    {"type": "chat.cancel", "id": "x1", "requestId": "t1"},
    {"type": "context.inspect", "id": "c1", "sessionId": SESSION, "exact": True},
    {"type": "usage.query", "id": "u1", "sessionId": SESSION, "since": "2026-11-01"},
    {"type": "session.list", "id": "l1", "limit": 10, "after": SESSION},
    {"type": "session.history", "id": "h1", "sessionId": SESSION, "limit": 5},
    {"type": "budget.status", "id": "b1", "watch": True},
    {"type": "test.shout", "id": "s1", "text": "hi", "times": 2},
    {"type": "test.crash", "id": "k1"},
    {"type": "test.flood", "id": "f1", "count": 1, "size": 1},
]
REMOVE = object()

NEAR_VALID_VALUES: list[Any] = (
    [
        None, "", " ", "\u3000", "x", "x" * 100, "x" * 101, "x" * 128, "x" * 129, "y" * 200,
        "x" * 512, "x" * 513, 0, 1, -1, 1000, 1001, 2.0, 50.0, 2.5, True, False, "5", [], {},
        "2026-11-28", "2026-02-29", "2024-02-29", "2026-11-28T09:00Z", "2026-11-28T24:00",
        "2026-11-28 09:00", "2026-11-28\n", "yesterday", "9999-12-31T23:00-05:00",
        "claude-sonnet-4.5", "-model", "model\n", "a" * 100, "ping", "chat.send", "pong",
    ]
)  # fmt: skip
NEAR_VALID = st.sampled_from(NEAR_VALID_VALUES)
OTHER_VALUES = st.one_of(
    st.integers(min_value=-5, max_value=1005),
    st.text(max_size=12),
    st.lists(st.text(max_size=3), max_size=2),
    st.just(REMOVE),
)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    group = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    builtins = [ep for ep in group if ep.value.startswith("agentspace_gateway.")]
    return builtins + [
        importlib.metadata.EntryPoint(name=f"test.{target}", value=target, group=ENTRY_POINT_GROUP)
        for target in TEST_PLUGIN_TARGETS
    ]


CODEC = WireCodec(client_classes(load_registry(_entry_points())))
SCHEMA = FrameSchema(published_schema(), CLIENT)


def _properties(tag: str) -> dict[str, Any]:
    for definition in published_schema()["$defs"].values():
        if definition.get("title") == tag and "id" in definition.get("properties", {}):
            properties: dict[str, Any] = definition["properties"]
            return properties
    raise AssertionError(f"no client message {tag} in the schema")


def _edges(rule: dict[str, Any]) -> list[Any]:
    """Values either side of each bound the schema states for a key."""
    edges: list[Any] = []
    for bound in ("minLength", "maxLength"):
        if bound in rule:
            edges += ["x" * max(0, rule[bound] - 1), "x" * rule[bound], "x" * (rule[bound] + 1)]
    for bound in ("minimum", "maximum"):
        if bound in rule:
            edges += [rule[bound] - 1, rule[bound], rule[bound] + 1, float(rule[bound])]
    return edges


@st.composite
def near_valid_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A valid frame with one to three of its keys (or the tag, or a new key) changed."""
    frame = dict(draw(st.sampled_from(BASES)))
    properties = _properties(frame["type"])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        key = draw(st.sampled_from([*sorted(properties), "extra", "session_id"]))
        edges = _edges(properties.get(key, {}))
        choices = [NEAR_VALID, OTHER_VALUES] + ([st.sampled_from(edges)] * 2 if edges else [])
        value = draw(st.one_of(*choices))
        if value is REMOVE:
            frame.pop(key, None)
        else:
            frame[key] = value
    return frame


def _decodes(frame: dict[str, Any]) -> bool:
    try:
        CODEC.decode(json.dumps(frame))
    except DecodeError:
        return False
    return True


def test_every_client_type_has_a_valid_base_frame() -> None:
    assert {base["type"] for base in BASES} == set(CODEC.by_tag)
    for base in BASES:
        assert _decodes(base), base
        assert SCHEMA.accepts(base), SCHEMA.problems(base)


@settings(max_examples=400, deadline=None, database=None)
@given(frame=near_valid_frames())
def test_the_decoder_and_the_schema_give_one_verdict(frame: dict[str, Any]) -> None:
    decoded = _decodes(frame)
    assert decoded == SCHEMA.accepts(frame), (frame, decoded, SCHEMA.problems(frame))


def test_every_single_change_gets_one_verdict() -> None:
    """Each key of each base frame, set to each near-valid value or removed, exhaustively:
    the cases Hypothesis would reach only by luck among its bounded examples."""
    disagreements = []
    for base in BASES:
        properties = _properties(base["type"])
        for key in [*sorted(properties), "extra"]:
            for value in [*NEAR_VALID_VALUES, *_edges(properties.get(key, {})), REMOVE]:
                frame = dict(base)
                if value is REMOVE:
                    frame.pop(key, None)
                else:
                    frame[key] = value
                if _decodes(frame) != SCHEMA.accepts(frame):
                    disagreements.append(frame)
    assert disagreements == []
