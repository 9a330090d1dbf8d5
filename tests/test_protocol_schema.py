"""The JSON Schema derived from the message classes, checked against what the codec really
reads and writes, and the ``protocol`` command that publishes it.

jsonschema is not a dependency, so ``conforms`` below checks the subset of draft 2020-12 the
generator emits; a keyword it does not know fails the test rather than passing silently.
"""

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import pytest
from attrs import Factory, field, frozen

from agentspace_gateway.cli import main
from agentspace_gateway.cli import protocol as protocol_command
from agentspace_gateway.handler_registry import HandlerRegistry, PluginConflictError, handles
from agentspace_gateway.protocol import messages
from agentspace_gateway.protocol.messages import (
    BUILTIN_CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Auth,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.schema import DIALECT, SchemaError, json_schema
from agentspace_gateway.protocol.wire import DecodeError, WireCodec

SESSION = "V1StGXR8_Z5jdHi6B-myT"
KEY = f"agent:default:{SESSION}"


# A subset validator for what the generator emits -------------------------------------------

_KNOWN = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "default", "type", "const",
    "enum", "oneOf", "anyOf", "properties", "required", "additionalProperties", "items",
}  # fmt: skip


def _type_matches(value: Any, name: str) -> bool:
    kinds = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "null": lambda v: v is None,
    }
    return kinds[name](value)


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    unknown = set(schema) - _KNOWN
    assert not unknown, f"the test validator does not know {unknown}"
    if "$ref" in schema:
        prefix = "#/$defs/"
        assert schema["$ref"].startswith(prefix)
        if not conforms(value, root["$defs"][schema["$ref"][len(prefix) :]], root):
            return False
    if "const" in schema and not (
        type(value) is type(schema["const"]) and value == schema["const"]
    ):
        return False
    if "enum" in schema and not any(
        type(value) is type(choice) and value == choice for choice in schema["enum"]
    ):
        return False
    if "type" in schema and not _type_matches(value, schema["type"]):
        return False
    if "oneOf" in schema and sum(conforms(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "anyOf" in schema and not any(conforms(value, s, root) for s in schema["anyOf"]):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if not set(schema.get("required", ())) <= set(value):
            return False
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            rule = properties.get(key, extra)
            if rule is False or (isinstance(rule, dict) and not conforms(item, rule, root)):
                return False
    if isinstance(value, list) and "items" in schema:
        return all(conforms(item, schema["items"], root) for item in value)
    return True


def refs_in(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(refs_in(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs_in(item) for item in node))
    return set()


# Fixtures -----------------------------------------------------------------------------------

CLIENTS = (*BUILTIN_CLIENT_MESSAGES, Auth)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json_schema(CLIENTS, SERVER_MESSAGES)


@pytest.fixture(scope="module")
def codec() -> WireCodec:
    return WireCodec(CLIENTS)


def definition(schema: dict[str, Any], union: str, tag: str) -> dict[str, Any]:
    """The $defs entry a union member with this wire tag points at."""
    for member in schema["$defs"][union]["oneOf"]:
        target = schema["$defs"][member["$ref"].removeprefix("#/$defs/")]
        if target["title"] == tag:
            return target
    raise AssertionError(f"{tag} is not in {union}")


# Every built-in message, described exactly --------------------------------------------------

# tag -> (required keys, optional keys), as the wire spells them.
CLIENT_SHAPES = {
    "chat.send": ({"type", "id", "content"}, {"sessionId", "model"}),
    "context.inspect": ({"type", "id", "sessionId"}, set()),
    "usage.query": ({"type", "id"}, {"sessionId"}),
    "session.list": ({"type", "id"}, set()),
    "ping": ({"type", "id"}, set()),
    "auth": ({"type", "token"}, {"id"}),
}
SERVER_SHAPES = {
    "pong": ({"type", "requestId"}, set()),
    "chat.stream.start": ({"type", "requestId", "sessionId", "model"}, set()),
    "chat.stream.delta": ({"type", "requestId", "delta"}, set()),
    "chat.stream.end": ({"type", "requestId", "usage", "cost"}, set()),
    "context.inspection": ({"type", "requestId", "sections", "totals"}, set()),
    "usage.report": ({"type", "requestId", "perModel", "grandTotal"}, set()),
    "session.created": ({"type", "sessionId", "sessionKey"}, set()),
    "session.list": ({"type", "requestId", "sessions"}, set()),
    "error": ({"type", "code", "message"}, {"requestId", "details"}),
    "auth.ok": ({"type"}, set()),
}


def test_the_shape_tables_cover_every_builtin_class() -> None:
    assert set(CLIENT_SHAPES) == {cls.type for cls in CLIENTS}
    assert set(SERVER_SHAPES) == {cls.type for cls in SERVER_MESSAGES}


@pytest.mark.parametrize(
    ("union", "tag", "shape"),
    [("ClientMessage", tag, shape) for tag, shape in CLIENT_SHAPES.items()]
    + [("ServerMessage", tag, shape) for tag, shape in SERVER_SHAPES.items()],
)
def test_each_builtin_message_has_its_camelcase_keys_and_required_list(
    schema: dict[str, Any], union: str, tag: str, shape: tuple[set[str], set[str]]
) -> None:
    required, optional = shape
    described = definition(schema, union, tag)
    assert described["type"] == "object"
    assert described["additionalProperties"] is False
    assert described["properties"]["type"] == {"const": tag}
    assert set(described["properties"]) == required | optional
    assert described["required"] == sorted(required)


def test_top_level_names_the_dialect_and_both_directions(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://agentspace.invalid/")
    assert schema["oneOf"] == [
        {"$ref": "#/$defs/ClientMessage"},
        {"$ref": "#/$defs/ServerMessage"},
    ]


def test_field_types_follow_the_annotations(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    chat_send = definition(schema, "ClientMessage", "chat.send")["properties"]
    # Optional with a None default: absent on the wire, so the plain type, not nullable.
    assert chat_send["sessionId"] == {"type": "string"}
    assert chat_send["model"] == {"type": "string"}
    assert definition(schema, "ClientMessage", "auth")["properties"]["id"] == {
        "type": "string",
        "default": "auth",
    }
    assert definition(schema, "ServerMessage", "error")["properties"]["details"] == {}
    listing = definition(schema, "ServerMessage", "session.list")["properties"]
    assert listing["sessions"] == {"type": "array", "items": {"$ref": "#/$defs/SessionSummary"}}
    report = definition(schema, "ServerMessage", "usage.report")["properties"]
    assert report["perModel"] == {
        "type": "object",
        "additionalProperties": {"$ref": "#/$defs/ModelUsageReport"},
    }
    assert defs["SessionSummary"]["properties"]["messageCount"] == {"type": "integer"}
    assert defs["Cost"]["properties"]["totalCost"] == {"type": "number"}
    assert defs["TokenUsage"]["title"] == "TokenUsage"
    assert "type" not in defs["TokenUsage"]["properties"]  # nested values carry no tag


def test_descriptions_come_from_the_class_own_docstring(schema: dict[str, Any]) -> None:
    assert definition(schema, "ClientMessage", "auth")["description"].startswith("First frame")
    # ChatSend has no docstring of its own; ClientMessage's must not be inherited.
    assert "description" not in definition(schema, "ClientMessage", "chat.send")


def test_every_reference_resolves_and_every_definition_is_used(schema: dict[str, Any]) -> None:
    refs = refs_in(schema)
    assert {ref.removeprefix("#/$defs/") for ref in refs} == set(schema["$defs"])
    assert "#/$defs/TokenUsage" in refs_in(definition(schema, "ServerMessage", "chat.stream.end"))


def test_output_is_deterministic() -> None:
    forwards = json_schema(CLIENTS, SERVER_MESSAGES)
    backwards = json_schema(reversed(CLIENTS), reversed(SERVER_MESSAGES))
    assert json.dumps(forwards) == json.dumps(backwards)


# Against the codec: what it writes conforms, what it refuses does not ------------------------

SERVER_EXAMPLES = [
    messages.Pong(request_id="p1"),
    messages.ChatStreamStart(request_id="t2", session_id=SESSION, model="claude-sonnet-4-5"),
    messages.ChatStreamDelta(request_id="t2", delta="Hello"),
    messages.ChatStreamEnd(
        request_id="t2",
        usage=messages.TokenUsage(input_tokens=12, output_tokens=3, total_tokens=15),
        cost=messages.Cost(input_cost=0.25, output_cost=1, total_cost=1.25),
    ),
    messages.ContextInspection(
        request_id="c1",
        sections=[
            messages.ContextSection(
                name="system", content="You are", byte_count=7, token_estimate=2, cost_estimate=0
            )
        ],
        totals=messages.ContextTotals(byte_count=7, token_estimate=2, cost_estimate=0.5),
    ),
    messages.UsageReport(
        request_id="u1",
        per_model={
            "claude-sonnet-4-5": messages.ModelUsageReport(
                input_tokens=1, output_tokens=2, total_tokens=3, total_cost=0.1, request_count=1
            )
        },
        grand_total=messages.GrandTotal(total_cost=0.1, total_tokens=3, request_count=1),
    ),
    messages.UsageReport(
        request_id="u2",
        per_model={},
        grand_total=messages.GrandTotal(total_cost=0, total_tokens=0, request_count=0),
    ),
    messages.SessionCreated(session_id=SESSION, session_key=KEY),
    messages.SessionListing(
        request_id="t1",
        sessions=[
            messages.SessionSummary(
                session_id=SESSION,
                session_key=KEY,
                model="claude-sonnet-4-5",
                created_at="2025-06-01T09:12:45.123Z",
                message_count=3,
            )
        ],
    ),
    messages.ErrorMessage(code="INTERNAL_ERROR", message="The handler failed."),
    messages.ErrorMessage(
        code="UNKNOWN_TYPE",
        message="Unknown message type 'x'.",
        request_id="t5",
        details={"supportedTypes": ["ping"]},
    ),
    messages.Authenticated(),
]


def test_the_examples_cover_every_server_class() -> None:
    assert {type(example) for example in SERVER_EXAMPLES} == set(SERVER_MESSAGES)


@pytest.mark.parametrize("message", SERVER_EXAMPLES, ids=lambda message: message.type)
def test_every_encoded_server_message_conforms(
    schema: dict[str, Any], codec: WireCodec, message: ServerMessage
) -> None:
    frame = json.loads(codec.encode(message))
    assert conforms(frame, schema["$defs"]["ServerMessage"], schema)
    assert conforms(frame, schema, schema)
    assert not conforms(frame, schema["$defs"]["ClientMessage"], schema)


GOOD_CLIENT_FRAMES = [
    {"type": "ping", "id": "p1"},
    {"type": "session.list", "id": "t1"},
    {"type": "chat.send", "id": "t2", "content": "hello"},
    {"type": "chat.send", "id": "t3", "content": "hi", "sessionId": SESSION, "model": "m-1"},
    {"type": "context.inspect", "id": "c1", "sessionId": KEY},
    {"type": "usage.query", "id": "u1"},
    {"type": "usage.query", "id": "u2", "sessionId": SESSION},
    {"type": "auth", "id": "a1", "token": "secret"},
    {"type": "auth", "token": "secret"},
]


@pytest.mark.parametrize("frame", GOOD_CLIENT_FRAMES, ids=lambda frame: frame["type"])
def test_frames_the_codec_accepts_conform(
    schema: dict[str, Any], codec: WireCodec, frame: dict[str, Any]
) -> None:
    codec.decode(json.dumps(frame))
    assert conforms(frame, schema["$defs"]["ClientMessage"], schema)
    assert conforms(frame, schema, schema)


BAD_CLIENT_FRAMES = {
    "missing content": {"type": "chat.send", "id": "t2"},
    "content not a string": {"type": "chat.send", "id": "t2", "content": 5},
    "unknown key": {"type": "ping", "id": "p1", "extra": True},
    "snake_case key": {"type": "context.inspect", "id": "c1", "session_id": SESSION},
    "id not a string": {"type": "ping", "id": 7},
    "missing id": {"type": "session.list"},
    "unknown tag": {"type": "chat.sned", "id": "t2", "content": "hi"},
    "auth without token": {"type": "auth", "id": "a1"},
}


@pytest.mark.parametrize("frame", BAD_CLIENT_FRAMES.values(), ids=BAD_CLIENT_FRAMES.keys())
def test_frames_the_codec_refuses_do_not_conform(
    schema: dict[str, Any], codec: WireCodec, frame: dict[str, Any]
) -> None:
    with pytest.raises(DecodeError):
        codec.decode(json.dumps(frame))
    assert not conforms(frame, schema["$defs"]["ClientMessage"], schema)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "pong"},
        {"type": "pong", "requestId": "p1", "extra": 1},
        {"type": "session.created", "sessionId": SESSION, "sessionKey": None},
        {"type": "error", "code": "X", "message": "m", "requestId": None},
        {
            "type": "session.list",
            "requestId": "t1",
            "sessions": [
                {
                    "sessionId": SESSION,
                    "sessionKey": KEY,
                    "model": "m",
                    "createdAt": "2025-06-01T09:12:45.123Z",
                    "messageCount": True,
                }
            ],
        },
        {
            "type": "chat.stream.end",
            "requestId": "t2",
            "usage": {"inputTokens": 1, "outputTokens": 2},
            "cost": {"inputCost": 0, "outputCost": 0, "totalCost": 0},
        },
    ],
)
def test_malformed_server_frames_do_not_conform(
    schema: dict[str, Any], frame: dict[str, Any]
) -> None:
    assert not conforms(frame, schema["$defs"]["ServerMessage"], schema)


# A plugin's classes, defined inline as a plugin would ---------------------------------------


@frozen(kw_only=True)
class Echo(ClientMessage):
    """Repeat the text back."""

    type: ClassVar[str] = "echo"
    text: str
    times: int = 1
    upper: bool = False
    mode: Literal["plain", "shout"] = "plain"
    tags: list[str] = Factory(list)
    weights: dict[str, float] | None = None
    note: str | None = field(default="none")


@frozen(kw_only=True)
class Cost:
    """A plugin's own class that happens to share a built-in class's name."""

    cents: int


@frozen(kw_only=True)
class EchoReply(ServerMessage):
    type: ClassVar[str] = "echo.reply"
    request_id: str
    text: str
    cost: Cost
    previous: str | None


@handles(Echo, replies=[EchoReply])
async def echo(context: Any, message: Echo) -> None:
    raise NotImplementedError  # never dispatched here


def test_a_plugin_message_joins_the_unions(schema: dict[str, Any]) -> None:
    extended = json_schema([*CLIENTS, Echo], [*SERVER_MESSAGES, EchoReply])
    described = definition(extended, "ClientMessage", "echo")
    assert described["description"] == "Repeat the text back."
    assert described["required"] == ["id", "text", "type"]
    assert described["properties"] == {
        "type": {"const": "echo"},
        "id": {"type": "string"},
        "text": {"type": "string"},
        "times": {"type": "integer", "default": 1},
        "upper": {"type": "boolean", "default": False},
        "mode": {"enum": ["plain", "shout"], "default": "plain"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        "weights": {"type": "object", "additionalProperties": {"type": "number"}},
        # A non-None default means None is a value of its own, so null is allowed.
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": "none"},
    }
    reply = definition(extended, "ServerMessage", "echo.reply")
    assert reply["required"] == ["cost", "previous", "requestId", "text", "type"]
    assert reply["properties"]["previous"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    # The built-in Cost keeps its name whatever is installed; the plugin's is qualified.
    plugin_cost = f"{__name__}.Cost"
    assert reply["properties"]["cost"] == {"$ref": f"#/$defs/{plugin_cost}"}
    assert extended["$defs"]["Cost"] == schema["$defs"]["Cost"]
    assert extended["$defs"][plugin_cost]["properties"] == {"cents": {"type": "integer"}}


def test_a_plugin_frame_is_checked_like_a_builtin_one() -> None:
    extended = json_schema([*CLIENTS, Echo], [*SERVER_MESSAGES, EchoReply])
    codec = WireCodec([*CLIENTS, Echo])
    client_union = extended["$defs"]["ClientMessage"]
    good = {"type": "echo", "id": "e1", "text": "hi", "times": 2, "mode": "shout", "tags": ["a"]}
    codec.decode(json.dumps(good))
    assert conforms(good, client_union, extended)
    for bad in ({**good, "mode": "whisper"}, {**good, "times": "2"}, {**good, "upper": 1}):
        with pytest.raises(DecodeError):
            codec.decode(json.dumps(bad))
        assert not conforms(bad, client_union, extended)
    reply = EchoReply(request_id="e1", text="hi hi", cost=Cost(cents=0), previous=None)
    assert conforms(json.loads(codec.encode(reply)), extended["$defs"]["ServerMessage"], extended)


def _message_with(annotation: Any) -> type[ServerMessage]:
    @frozen(kw_only=True)
    class Odd(ServerMessage):
        type: ClassVar[str] = "odd"
        value: annotation  # type: ignore[valid-type]

    return Odd


class NotAttrs:
    pass


@pytest.mark.parametrize(
    "annotation",
    [set[str], str | int, dict[int, str], tuple[str, int], bytes, NotAttrs, list, Literal[b"x"]],
    ids=repr,
)
def test_an_annotation_the_wire_cannot_carry_is_refused_by_name(annotation: Any) -> None:
    with pytest.raises(TypeError, match=r"Odd\.value") as raised:
        json_schema([], [_message_with(annotation)])
    assert isinstance(raised.value, SchemaError)


def test_a_nested_class_with_a_bad_annotation_is_named() -> None:
    @frozen(kw_only=True)
    class Inner:
        when: bytes

    with pytest.raises(TypeError, match=r"Inner\.when"):
        json_schema([], [_message_with(list[Inner])])


def test_classes_that_are_not_messages_are_refused() -> None:
    with pytest.raises(TypeError, match="ServerMessage"):
        json_schema([], [Cost])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ClientMessage"):
        json_schema([messages.Pong], [])  # type: ignore[list-item]


def test_two_classes_claiming_one_tag_are_refused() -> None:
    @frozen(kw_only=True)
    class OtherPing(ClientMessage):
        type: ClassVar[str] = "ping"

    with pytest.raises(TypeError, match="'ping' is claimed by both"):
        json_schema([messages.Ping, OtherPing], [])
    # The same class twice is one class, not a conflict.
    assert json_schema([messages.Ping, messages.Ping], []) == json_schema([messages.Ping], [])


def test_attrs_make_class_messages_work_too() -> None:
    Made = attrs.make_class(
        "Made", {"size": attrs.field(type=int)}, bases=(ClientMessage,), frozen=True, kw_only=True
    )
    Made.type = "made"  # type: ignore[attr-defined]
    described = definition(json_schema([Made], []), "ClientMessage", "made")
    assert described["properties"]["size"] == {"type": "integer"}


# The protocol command ------------------------------------------------------------------------


def _registry_with_echo() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.add(echo, "echo-plugin 1.0 (echo = tests:echo)")
    return registry


def test_json_schema_command_prints_every_builtin_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("AGENTSPACE_HOME", str(home))
    assert main(["protocol", "--json-schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    client_tags = {definition(printed, "ClientMessage", tag)["title"] for tag in CLIENT_SHAPES}
    server_tags = {definition(printed, "ServerMessage", tag)["title"] for tag in SERVER_SHAPES}
    assert client_tags == set(CLIENT_SHAPES)
    assert server_tags == set(SERVER_SHAPES)
    assert not home.exists()  # no home, vault or database was needed


def test_json_schema_command_includes_installed_plugins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol_command, "load_registry", _registry_with_echo)
    assert main(["protocol", "--json-schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert definition(printed, "ClientMessage", "echo")["properties"]["text"] == {"type": "string"}
    assert definition(printed, "ServerMessage", "echo.reply")["required"][0] == "cost"
    assert definition(printed, "ClientMessage", "ping")["title"] == "ping"


def test_protocol_command_lists_types_with_their_owner(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol_command, "load_registry", _registry_with_echo)
    assert main(["protocol"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["type", "direction", "owner"]
    rows = {tuple(line.split(maxsplit=2)) for line in lines[1:]}
    assert ("echo", "client", "echo-plugin 1.0 (echo = tests:echo)") in rows
    assert ("echo.reply", "server", "echo-plugin 1.0 (echo = tests:echo)") in rows
    assert ("ping", "client", protocol_command.NO_HANDLER) in rows
    assert ("auth", "client", protocol_command.CONNECTION) in rows
    assert ("error", "server", protocol_command.BUILT_IN) in rows
    assert len(rows) == len(CLIENT_SHAPES) + len(SERVER_SHAPES) + 2


def test_a_plugin_class_replaces_the_builtin_one_with_its_tag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @frozen(kw_only=True)
    class LoudPing(ClientMessage):
        type: ClassVar[str] = "ping"
        volume: int

    @handles(LoudPing)
    async def loud_ping(context: Any, message: LoudPing) -> None:
        raise NotImplementedError

    registry = HandlerRegistry()
    registry.add(loud_ping, "loud 1.0")
    monkeypatch.setattr(protocol_command, "load_registry", lambda: registry)
    assert main(["protocol", "--json-schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert definition(printed, "ClientMessage", "ping")["required"] == ["id", "type", "volume"]


def test_conflicting_plugins_stop_the_command_with_status_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def conflict() -> HandlerRegistry:
        raise PluginConflictError("Message type 'echo' is claimed twice: by a and by b.")

    monkeypatch.setattr(protocol_command, "load_registry", conflict)
    assert main(["protocol", "--json-schema"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "claimed twice" in captured.err


def test_a_plugin_class_the_schema_cannot_describe_fails_with_its_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @frozen(kw_only=True)
    class Blob(ClientMessage):
        type: ClassVar[str] = "blob"
        data: bytes

    @handles(Blob)
    async def blob(context: Any, message: Blob) -> None:
        raise NotImplementedError

    registry = HandlerRegistry()
    registry.add(blob, "blob 1.0")
    monkeypatch.setattr(protocol_command, "load_registry", lambda: registry)
    assert main(["protocol", "--json-schema"]) == 1
    assert "Blob.data" in capsys.readouterr().err
