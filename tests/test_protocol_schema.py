"""The JSON Schema derived from the message classes, checked with the jsonschema library
against what the codec really reads and writes, and the ``protocol`` command that publishes it.
"""

import importlib.metadata
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import pytest
from attrs import Factory, field, frozen

from agentspace_gateway.cli import main
from agentspace_gateway.cli import protocol as protocol_command
from agentspace_gateway.handler_registry import HandlerRegistry, PluginConflictError, handles
from agentspace_gateway.handlers import BUILTIN_HANDLERS as BUILTIN_HANDLERS_LIST
from agentspace_gateway.protocol import messages
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.messages import (
    SERVER_MESSAGES,
    Auth,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.schema import DIALECT, SchemaError, json_schema
from agentspace_gateway.protocol.validators import AGENT_ID, MODEL_ID, NOT_BLANK, TIMESTAMP
from agentspace_gateway.protocol.wire import DecodeError, WireCodec

from schema_check import CLIENT, SERVER, FrameSchema

SESSION = "V1StGXR8_Z5jdHi6B-myT"
KEY = f"agent:default:{SESSION}"

_validators: dict[tuple[int, str | None], FrameSchema] = {}


def conforms(value: Any, root: dict[str, Any], union: str | None = None) -> bool:
    """Whether jsonschema accepts ``value`` as one of ``union`` (or as the whole document)."""
    key = (id(root), union)
    if key not in _validators:
        _validators[key] = FrameSchema(root, union)
    return _validators[key].accepts(value)


def refs_in(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(refs_in(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs_in(item) for item in node))
    return set()


# Fixtures -----------------------------------------------------------------------------------

CLIENTS = (*(handler.message_class for handler in BUILTIN_HANDLERS_LIST), Auth)


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
    "chat.send": ({"type", "id", "content"}, {"sessionId", "model", "agentId"}),
    "chat.cancel": ({"type", "id"}, {"requestId"}),
    "context.inspect": ({"type", "id", "sessionId"}, {"exact"}),
    "usage.query": ({"type", "id"}, {"sessionId", "since", "until", "client", "groupBy"}),
    "session.list": ({"type", "id"}, {"limit", "after"}),
    "ping": ({"type", "id"}, set()),
    "auth": ({"type", "token"}, {"id"}),
    "session.history": ({"type", "id", "sessionId"}, {"limit"}),
    "budget.status": ({"type", "id"}, {"watch"}),
}
SERVER_SHAPES = {
    "pong": ({"type", "requestId"}, set()),
    "chat.stream.start": ({"type", "requestId", "sessionId", "model"}, {"maxTokensClipped"}),
    "chat.stream.delta": ({"type", "requestId", "delta"}, set()),
    "chat.stream.end": (
        {"type", "requestId", "sessionId", "usage", "cost", "stopReason"},
        set(),
    ),
    "context.inspection": (
        {"type", "requestId", "sessionId", "model", "sections", "totals"},
        {"estimateRatio", "exactInputTokens", "estimateSpread", "calibrated"},
    ),
    "usage.report": ({"type", "requestId", "perModel", "grandTotal"}, {"groupBy", "groups"}),
    "session.created": ({"type", "sessionId", "sessionKey"}, set()),
    "session.list": ({"type", "requestId", "sessions"}, {"nextAfter"}),
    "error": (
        {"type", "code", "message"},
        {"requestId", "details", "retryable", "retryAfterMs", "usage", "cost"},
    ),
    "auth.ok": ({"type"}, set()),
    "session.messages": ({"type", "requestId", "sessionId", "messages"}, set()),
}
# The values nested inside server messages: $defs name -> (required keys, optional keys).
TOKEN_COUNTS = {"inputTokens", "outputTokens", "cacheCreationInputTokens", "cacheReadInputTokens"}
NESTED_SHAPES: dict[str, tuple[set[str], set[str]]] = {
    "TokenUsage": (TOKEN_COUNTS | {"totalTokens", "cacheCreation1hInputTokens"}, {"estimated"}),
    "Cost": (
        {"inputCost", "outputCost", "totalCost", "priced"}
        | {"inputCostNanos", "outputCostNanos", "totalCostNanos"},
        {"priceSource"},
    ),
    "ContextSection": (
        {"name", "content", "byteCount", "tokenEstimate", "costEstimate", "costEstimateNanos"},
        set(),
    ),
    "ContextTotals": ({"byteCount", "tokenEstimate", "costEstimate", "costEstimateNanos"}, set()),
    "EstimateSpread": (
        {"requestCount", "minRatio", "p10Ratio", "medianRatio", "p90Ratio", "maxRatio"},
        set(),
    ),
    "CalibratedEstimate": (
        {"basis", "ratio", "requestCount", "tokenEstimate", "costEstimate", "costEstimateNanos"},
        set(),
    ),
    "ModelUsageReport": (
        TOKEN_COUNTS
        | {"totalTokens", "totalCost", "requestCount", "priced"}
        | {"totalCostNanos", "cacheCreation1hInputTokens"},
        {"estimatedCount"},
    ),
    "GrandTotal": ({"totalCost", "totalTokens", "requestCount", "totalCostNanos"}, set()),
    "UsageGroup": (
        TOKEN_COUNTS
        | {"key", "client", "label", "totalTokens", "totalCost", "totalCostNanos"}
        | {"requestCount", "priced", "estimatedCount", "cacheCreation1hInputTokens"},
        set(),
    ),
    "SessionSummary": (
        {"sessionId", "sessionKey", "model", "createdAt", "messageCount"},
        {"origin"},
    ),
    "SessionOrigin": ({"client"}, {"agentId", "externalId"}),
    "HistoryMessage": ({"role", "content", "createdAt", "complete"}, {"tokenCount"}),
}


def test_the_shape_tables_cover_every_builtin_class(schema: dict[str, Any]) -> None:
    assert set(CLIENT_SHAPES) == {cls.type for cls in CLIENTS}
    assert set(SERVER_SHAPES) == {cls.type for cls in SERVER_MESSAGES}
    messages_and_unions = {cls.__name__ for cls in (*CLIENTS, *SERVER_MESSAGES)} | {
        "ClientMessage",
        "ServerMessage",
    }
    assert set(NESTED_SHAPES) == set(schema["$defs"]) - messages_and_unions


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
    assert described["properties"]["type"]["const"] == tag
    assert set(described["properties"]) == required | optional
    assert described["required"] == sorted(required)


@pytest.mark.parametrize(("name", "shape"), NESTED_SHAPES.items(), ids=NESTED_SHAPES.keys())
def test_each_nested_value_has_exact_keys_and_no_tag(
    schema: dict[str, Any], name: str, shape: tuple[set[str], set[str]]
) -> None:
    required, optional = shape
    described = schema["$defs"][name]
    assert described["title"] == name
    assert described["type"] == "object"
    assert described["additionalProperties"] is False
    assert set(described["properties"]) == required | optional
    assert described["required"] == sorted(required)


def test_top_level_names_the_dialect_and_both_directions(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://agentspace.invalid/")
    assert schema["oneOf"] == [
        {"$ref": "#/$defs/ClientMessage"},
        {"$ref": "#/$defs/ServerMessage"},
    ]


TEXT_128 = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": NOT_BLANK}
OPTIONAL_TEXT_128 = {**TEXT_128, "type": ["string", "null"]}


def _checks(property_schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema without its prose."""
    return {k: v for k, v in property_schema.items() if k not in ("description", "examples")}


def test_field_types_and_checks_follow_the_declarations(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    chat_send = definition(schema, CLIENT, "chat.send")["properties"]
    # Optional with a None default: left out or null in what a client sends.
    assert _checks(chat_send["sessionId"]) == OPTIONAL_TEXT_128
    assert _checks(chat_send["model"]) == {
        "type": ["string", "null"],
        "pattern": MODEL_ID,
        "maxLength": 100,
    }
    assert _checks(chat_send["agentId"]) == {"type": ["string", "null"], "pattern": AGENT_ID}
    assert _checks(chat_send["content"]) == {**TEXT_128, "maxLength": 512 * 1024}
    assert _checks(chat_send["id"]) == TEXT_128
    assert _checks(definition(schema, CLIENT, "auth")["properties"]["id"]) == {
        **TEXT_128,
        "default": "auth",
    }
    assert _checks(definition(schema, SERVER, "error")["properties"]["details"]) == {}
    listing = definition(schema, SERVER, "session.list")["properties"]
    assert listing["sessions"]["items"] == {"$ref": "#/$defs/SessionSummary"}
    # What the gateway sends leaves an empty optional key out: never null there.
    assert _checks(listing["nextAfter"]) == {"type": "string"}
    session_list = definition(schema, CLIENT, "session.list")["properties"]
    # No default published: leaving limit out means every session, not a page of some size.
    assert _checks(session_list["limit"]) == {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 1000,
    }
    assert _checks(session_list["after"]) == OPTIONAL_TEXT_128
    history = definition(schema, CLIENT, "session.history")["properties"]
    assert _checks(history["limit"]) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }
    report = definition(schema, SERVER, "usage.report")["properties"]
    assert _checks(report["perModel"]) == {
        "type": "object",
        "additionalProperties": {"$ref": "#/$defs/ModelUsageReport"},
    }
    assert _checks(defs["SessionSummary"]["properties"]["messageCount"]) == {"type": "integer"}
    assert _checks(defs["Cost"]["properties"]["totalCost"]) == {"type": "number"}
    assert "type" not in defs["TokenUsage"]["properties"]  # nested values carry no tag
    assert _checks(defs["Cost"]["properties"]["priced"]) == {"type": "boolean"}
    cancel = definition(schema, CLIENT, "chat.cancel")["properties"]
    assert _checks(cancel["requestId"]) == OPTIONAL_TEXT_128
    inspect = definition(schema, CLIENT, "context.inspect")["properties"]
    # A non-None default is published, so a client knows leaving it out means false.
    assert _checks(inspect["exact"]) == {"type": "boolean", "default": False}
    usage = definition(schema, CLIENT, "usage.query")["properties"]
    assert _checks(usage["since"]) == _checks(usage["until"])
    assert _checks(usage["since"]) == {"type": ["string", "null"], "pattern": TIMESTAMP}
    inspection = definition(schema, SERVER, "context.inspection")["properties"]
    assert _checks(inspection["estimateRatio"]) == {"type": "number"}
    assert _checks(inspection["exactInputTokens"]) == {"type": "integer"}
    error = definition(schema, SERVER, "error")["properties"]
    assert _checks(error["retryable"]) == {"type": "boolean"}
    assert _checks(error["retryAfterMs"]) == {"type": "integer"}


def test_error_code_names_every_builtin_code_and_admits_a_plugin_code(
    schema: dict[str, Any],
) -> None:
    code = definition(schema, SERVER, "error")["properties"]["code"]
    builtin, plugin = code["anyOf"]
    assert builtin["enum"] == [c.value for c in ErrorCode]
    assert plugin["type"] == "string"
    for value in ("NO_API_KEY", "SERVER_SHUTTING_DOWN", "MY_PLUGIN_CODE"):
        assert conforms({"type": "error", "code": value, "message": "m"}, schema, SERVER)
    assert not conforms({"type": "error", "code": 7, "message": "m"}, schema, SERVER)


def _properties(node: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = node.get("properties", {})
    return properties


def test_every_builtin_message_and_field_is_described(schema: dict[str, Any]) -> None:
    undescribed = [
        f"{name}.{key}" if key else name
        for name, node in schema["$defs"].items()
        for key, prop in [("", node), *_properties(node).items()]
        if not prop.get("description", "").strip()
    ]
    assert undescribed == []


def test_descriptions_come_from_the_class_own_docstring(schema: dict[str, Any]) -> None:
    assert definition(schema, CLIENT, "auth")["description"].startswith("First frame")
    assert definition(schema, CLIENT, "chat.cancel")["description"].startswith("Stop the reply")
    assert schema["$defs"]["Cost"]["description"].startswith("USD.")

    @frozen(kw_only=True)
    class Quiet(ClientMessage):
        type: ClassVar[str] = "quiet"

    # Quiet has no docstring of its own; ClientMessage's must not be inherited.
    assert "description" not in definition(json_schema([Quiet], []), CLIENT, "quiet")


def test_every_reference_resolves_and_every_definition_is_used(schema: dict[str, Any]) -> None:
    refs = refs_in(schema)
    assert {ref.removeprefix("#/$defs/") for ref in refs} == set(schema["$defs"])
    end_refs = refs_in(definition(schema, "ServerMessage", "chat.stream.end"))
    assert {"#/$defs/TokenUsage", "#/$defs/Cost"} <= end_refs


def test_output_is_deterministic() -> None:
    forwards = json_schema(CLIENTS, SERVER_MESSAGES)
    backwards = json_schema(reversed(CLIENTS), reversed(SERVER_MESSAGES))
    assert json.dumps(forwards) == json.dumps(backwards)


# Against the codec: what it writes conforms, what it refuses does not ------------------------


def _usage(inputs: int, outputs: int, writes: int, reads: int) -> messages.TokenUsage:
    return messages.TokenUsage(
        input_tokens=inputs,
        output_tokens=outputs,
        cache_creation_input_tokens=writes,
        cache_read_input_tokens=reads,
        total_tokens=inputs + outputs + writes + reads,
        cache_creation_1h_input_tokens=writes // 2,
    )


def _section(name: str, content: str, tokens: int) -> messages.ContextSection:
    return messages.ContextSection(
        name=name,
        content=content,
        byte_count=len(content.encode()),
        token_estimate=tokens,
        cost_estimate=tokens * 3e-6,
        cost_estimate_nanos=tokens * 3_000,
    )


SECTIONS = [
    _section("system_prompt", "You are a helpful AI assistant.", 7),
    _section("history", "user: hello\n\nassistant: Hello, world!", 11),
    _section("memory", "", 0),
    _section("skills", "", 0),
    _section("tools", "", 0),
]

# Cancelled, on a model without a known price: the tokens so far, and zeros, not a guess.
CANCELLED_UNPRICED = messages.ChatStreamEnd(
    request_id="t3",
    session_id=SESSION,
    usage=_usage(19, 1, 0, 0),
    cost=messages.Cost(
        input_cost=0,
        output_cost=0,
        total_cost=0,
        priced=False,
        input_cost_nanos=0,
        output_cost_nanos=0,
        total_cost_nanos=0,
        price_source=None,
    ),
    stop_reason="cancelled",
)
# Before the session has a measured request: no estimateRatio; without exact: no count.
BARE_INSPECTION = messages.ContextInspection(
    request_id="c1",
    session_id=SESSION,
    model="claude-sonnet-4-5",
    sections=SECTIONS[:1],
    totals=messages.ContextTotals(
        byte_count=31, token_estimate=7, cost_estimate=2.1e-05, cost_estimate_nanos=21_000
    ),
)
NOT_RETRYABLE = messages.ErrorMessage(
    code="CONTEXT_TOO_LONG",
    message="prompt is too long: 210000 tokens > 200000 maximum",
    request_id="t7",
    retryable=False,
)
NO_API_KEY = messages.ErrorMessage(
    code="NO_API_KEY",
    message="Anthropic API key not configured. Run: agentspace-gateway keys add anthropic",
    request_id="t8",
)

# One priced model and one whose price is unknown (its cost is 0, and priced says so).
MIXED_PRICING_REPORT = messages.UsageReport(
    request_id="u1",
    per_model={
        "claude-sonnet-4-5": messages.ModelUsageReport(
            input_tokens=1,
            output_tokens=2,
            cache_creation_input_tokens=4,
            cache_read_input_tokens=8,
            total_tokens=15,
            total_cost=0.1,
            request_count=1,
            priced=True,
            total_cost_nanos=100_000_000,
            cache_creation_1h_input_tokens=3,
            estimated_count=1,
        ),
        "my-local-model": messages.ModelUsageReport(
            input_tokens=26,
            output_tokens=4,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            total_tokens=30,
            total_cost=0,
            request_count=1,
            priced=False,
            total_cost_nanos=0,
            cache_creation_1h_input_tokens=0,
        ),
    },
    grand_total=messages.GrandTotal(
        total_cost=0.1, total_tokens=45, request_count=2, total_cost_nanos=100_000_000
    ),
)

SERVER_EXAMPLES = [
    messages.Pong(request_id="p1"),
    messages.ChatStreamStart(request_id="t2", session_id=SESSION, model="claude-sonnet-4-5"),
    messages.ChatStreamStart(
        request_id="t3", session_id=SESSION, model="claude-sonnet-4-5", max_tokens_clipped=512
    ),
    messages.ChatStreamDelta(request_id="t2", delta="Hello"),
    messages.ChatStreamEnd(
        request_id="t2",
        session_id=SESSION,
        usage=_usage(12, 3, 2048, 5),
        cost=messages.Cost(
            input_cost=0.25,
            output_cost=1,
            total_cost=1.25,
            priced=True,
            input_cost_nanos=250_000_000,
            output_cost_nanos=1_000_000_000,
            total_cost_nanos=1_250_000_000,
            price_source="genai-prices",
        ),
        stop_reason="end_turn",
    ),
    CANCELLED_UNPRICED,
    BARE_INSPECTION,
    messages.ContextInspection(
        request_id="c2",
        session_id=SESSION,
        model="claude-sonnet-4-5",
        sections=SECTIONS,
        totals=messages.ContextTotals(
            byte_count=67, token_estimate=18, cost_estimate=5.4e-05, cost_estimate_nanos=54_000
        ),
        estimate_ratio=1.2,
        exact_input_tokens=22,
        estimate_spread=messages.EstimateSpread(
            request_count=3,
            min_ratio=0.9,
            p10_ratio=0.9,
            median_ratio=1.2,
            p90_ratio=1.5,
            max_ratio=1.5,
        ),
        calibrated=messages.CalibratedEstimate(
            basis="session",
            ratio=1.2,
            request_count=3,
            token_estimate=22,
            cost_estimate=6.6e-05,
            cost_estimate_nanos=66_000,
        ),
    ),
    MIXED_PRICING_REPORT,
    messages.UsageReport(
        request_id="u2",
        per_model={},
        grand_total=messages.GrandTotal(
            total_cost=0, total_tokens=0, request_count=0, total_cost_nanos=0
        ),
    ),
    messages.UsageReport(
        request_id="u3",
        per_model={},
        grand_total=messages.GrandTotal(
            total_cost=6e-05, total_tokens=12, request_count=1, total_cost_nanos=60_000
        ),
        group_by="client",
        groups=[
            messages.UsageGroup(
                key="laptop",
                client="laptop",
                label="laptop",
                input_tokens=10,
                output_tokens=2,
                cache_creation_input_tokens=0,
                cache_read_input_tokens=0,
                cache_creation_1h_input_tokens=0,
                total_tokens=12,
                total_cost=6e-05,
                total_cost_nanos=60_000,
                request_count=1,
                priced=True,
                estimated_count=0,
            )
        ],
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
    # A page with more after it: where the next one starts.
    messages.SessionListing(
        request_id="t2",
        sessions=[
            messages.SessionSummary(
                session_id=SESSION,
                session_key=KEY,
                model="claude-sonnet-4-5",
                created_at="2025-06-01T09:12:45.123Z",
                message_count=0,
            )
        ],
        next_after=SESSION,
    ),
    messages.ErrorMessage(code="INTERNAL_ERROR", message="The handler failed."),
    messages.ErrorMessage(
        code="RATE_LIMITED",
        message="This request would exceed your organization's rate limit.",
        request_id="t6",
        retryable=True,
        retry_after_ms=2000,
    ),
    NOT_RETRYABLE,
    NO_API_KEY,
    # An upstream drop after tokens were billed: the error carries them, output estimated.
    messages.ErrorMessage(
        code="LLM_ERROR",
        message="Anthropic closed the connection mid-reply.",
        request_id="t7",
        retryable=True,
        usage=attrs.evolve(_usage(19, 42, 0, 0), estimated=True),
        cost=messages.Cost(
            input_cost=0.000057,
            output_cost=0.00063,
            total_cost=0.000687,
            priced=True,
            input_cost_nanos=57_000,
            output_cost_nanos=630_000,
            total_cost_nanos=687_000,
            price_source="genai-prices",
        ),
    ),
    messages.ErrorMessage(
        code="UNKNOWN_TYPE",
        message="Unknown message type 'x'.",
        request_id="t5",
        details={"supportedTypes": ["ping"]},
    ),
    messages.Authenticated(),
    messages.SessionMessages(
        request_id="h1",
        session_id=SESSION,
        messages=[
            messages.HistoryMessage(
                role="user", content="hello", created_at="2025-06-01T09:12:45.123Z", complete=True
            ),
            messages.HistoryMessage(
                role="assistant",
                content="Hel",
                created_at="2025-06-01T09:12:46.001Z",
                complete=False,
                token_count=2,
            ),
        ],
    ),
]


def test_the_examples_cover_every_server_class() -> None:
    assert {type(example) for example in SERVER_EXAMPLES} == set(SERVER_MESSAGES)


def _encoded(codec: WireCodec, message: ServerMessage) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(codec.encode(message))
    return frame


def test_every_optional_server_key_appears_in_some_example(codec: WireCodec) -> None:
    for tag, (_, optional) in SERVER_SHAPES.items():
        frames = [_encoded(codec, m) for m in SERVER_EXAMPLES if m.type == tag]
        assert optional <= set().union(*frames), tag


def test_optional_server_keys_without_a_value_are_left_out_not_null(codec: WireCodec) -> None:
    assert set(_encoded(codec, BARE_INSPECTION)) == SERVER_SHAPES["context.inspection"][0]
    assert set(_encoded(codec, NO_API_KEY)) == {"type", "code", "message", "requestId"}
    too_long = _encoded(codec, NOT_RETRYABLE)
    # retryable is a value even when false; retryAfterMs only when upstream gave one.
    assert (too_long["retryable"], "retryAfterMs" in too_long) == (False, False)


def test_a_chat_stream_end_carries_every_count_and_the_stop_reason(codec: WireCodec) -> None:
    assert _encoded(codec, CANCELLED_UNPRICED) == {
        "type": "chat.stream.end",
        "requestId": "t3",
        "sessionId": SESSION,
        "usage": {
            "inputTokens": 19,
            "outputTokens": 1,
            "cacheCreationInputTokens": 0,
            "cacheReadInputTokens": 0,
            "totalTokens": 20,
            "cacheCreation1hInputTokens": 0,
        },
        "cost": {
            "inputCost": 0.0,
            "outputCost": 0.0,
            "totalCost": 0.0,
            "priced": False,
            "inputCostNanos": 0,
            "outputCostNanos": 0,
            "totalCostNanos": 0,
        },
        "stopReason": "cancelled",
    }


@pytest.mark.parametrize("message", SERVER_EXAMPLES, ids=lambda message: message.type)
def test_every_encoded_server_message_conforms(
    schema: dict[str, Any], codec: WireCodec, message: ServerMessage
) -> None:
    frame = json.loads(codec.encode(message))
    assert conforms(frame, schema, SERVER)
    assert conforms(frame, schema)
    assert not conforms(frame, schema, CLIENT)


GOOD_CLIENT_FRAMES = [
    {"type": "ping", "id": "p1"},
    {"type": "session.list", "id": "t1"},
    {"type": "session.list", "id": "t2", "limit": 1},
    {"type": "session.list", "id": "t3", "limit": 1000},
    {"type": "session.list", "id": "t4", "limit": 50, "after": SESSION},
    {"type": "session.list", "id": "t5", "after": KEY},
    {"type": "chat.send", "id": "t2", "content": "hello"},
    {"type": "chat.send", "id": "t3", "content": "hi", "sessionId": SESSION, "model": "m-1"},
    {"type": "chat.cancel", "id": "x1"},
    {"type": "chat.cancel", "id": "x2", "requestId": "t2"},
    {"type": "context.inspect", "id": "c1", "sessionId": KEY},
    {"type": "context.inspect", "id": "c2", "sessionId": SESSION, "exact": True},
    {"type": "context.inspect", "id": "c3", "sessionId": SESSION, "exact": False},
    {"type": "usage.query", "id": "u1"},
    {"type": "usage.query", "id": "u2", "sessionId": SESSION},
    {"type": "usage.query", "id": "u3", "since": "2026-11-28T09:00:00Z"},
    {"type": "usage.query", "id": "u4", "until": "2026-12-01T00:00:00.000Z"},
    {
        "type": "usage.query",
        "id": "u5",
        "sessionId": KEY,
        "since": "2026-11-01",
        "until": "2026-12-01T00:00:00+01:00",
    },
    {"type": "auth", "id": "a1", "token": "secret"},
    {"type": "auth", "token": "secret"},
    # null for an optional key is the same as leaving it out, in the codec and the schema.
    {"type": "chat.send", "id": "n1", "content": "hi", "sessionId": None, "model": None},
    {"type": "chat.cancel", "id": "n2", "requestId": None},
    {"type": "usage.query", "id": "n3", "sessionId": None, "since": None, "until": None},
    {"type": "session.list", "id": "n4", "limit": None, "after": None},
    # JSON has one number type: 50.0 is the integer 50 to JSON Schema and to the codec.
    {"type": "session.list", "id": "n5", "limit": 50.0},
    {"type": "usage.query", "id": "d1", "since": "2024-02-29", "until": "2026-11-28T09:00"},
    {"type": "usage.query", "id": "d2", "since": "0001-01-01T00:30+01:00"},
    {"type": "usage.query", "id": "d3", "until": "9999-12-31T23:00:00.123456789-05:00"},
    {"type": "chat.send", "id": "m1", "content": " x ", "model": "claude-sonnet-4.5"},
    {"type": "chat.send", "id": "g1", "content": "hi", "agentId": "planner"},
    {"type": "chat.send", "id": "g2", "content": "hi", "agentId": "a" * 128},
    {"type": "chat.send", "id": "g3", "content": "hi", "agentId": "sub:1.x@host/p+q=r-s_t"},
    {"type": "chat.send", "id": "g4", "content": "hi", "agentId": None},
]


@pytest.mark.parametrize("frame", GOOD_CLIENT_FRAMES, ids=lambda frame: frame["type"])
def test_frames_the_codec_accepts_conform(
    schema: dict[str, Any], codec: WireCodec, frame: dict[str, Any]
) -> None:
    codec.decode(json.dumps(frame))
    assert conforms(frame, schema, CLIENT)
    assert conforms(frame, schema)


BAD_CLIENT_FRAMES = {
    "missing content": {"type": "chat.send", "id": "t2"},
    "content not a string": {"type": "chat.send", "id": "t2", "content": 5},
    "unknown key": {"type": "ping", "id": "p1", "extra": True},
    "snake_case key": {"type": "context.inspect", "id": "c1", "session_id": SESSION},
    "id not a string": {"type": "ping", "id": 7},
    "missing id": {"type": "session.list"},
    "unknown tag": {"type": "chat.sned", "id": "t2", "content": "hi"},
    "auth without token": {"type": "auth", "id": "a1"},
    "cancel requestId not a string": {"type": "chat.cancel", "id": "x1", "requestId": 5},
    "cancel snake_case request_id": {"type": "chat.cancel", "id": "x1", "request_id": "t2"},
    "cancel naming a session": {"type": "chat.cancel", "id": "x1", "sessionId": SESSION},
    "exact as a string": {"type": "context.inspect", "id": "c1", "sessionId": KEY, "exact": "true"},
    "exact as a number": {"type": "context.inspect", "id": "c1", "sessionId": KEY, "exact": 1},
    "exact null": {"type": "context.inspect", "id": "c1", "sessionId": KEY, "exact": None},
    "history limit null": {"type": "session.history", "id": "h1", "sessionId": KEY, "limit": None},
    "auth id null": {"type": "auth", "id": None, "token": "secret"},
    "content null": {"type": "chat.send", "id": "t2", "content": None},
    "exact without sessionId": {"type": "context.inspect", "id": "c1", "exact": True},
    "list limit as a string": {"type": "session.list", "id": "l1", "limit": "5"},
    "list limit as a boolean": {"type": "session.list", "id": "l1", "limit": True},
    "list limit as a number": {"type": "session.list", "id": "l1", "limit": 10.5},
    "list after not a string": {"type": "session.list", "id": "l1", "after": 5},
    "list snake_case next_after": {"type": "session.list", "id": "l1", "next_after": SESSION},
    "list nextAfter sent back": {"type": "session.list", "id": "l1", "nextAfter": SESSION},
    "since not a string": {"type": "usage.query", "id": "u1", "since": 1764320400},
    "until not a string": {"type": "usage.query", "id": "u1", "until": ["2026-12-01"]},
}


@pytest.mark.parametrize("frame", BAD_CLIENT_FRAMES.values(), ids=BAD_CLIENT_FRAMES.keys())
def test_frames_the_codec_refuses_do_not_conform(
    schema: dict[str, Any], codec: WireCodec, frame: dict[str, Any]
) -> None:
    with pytest.raises(DecodeError):
        codec.decode(json.dumps(frame))
    assert not conforms(frame, schema, CLIENT)


ISO_8601 = "must be an ISO 8601 time such as 2026-11-28T09:00:00Z"
# Lengths, ranges and formats: the schema refuses the frame too, and the codec names the
# field and still echoes the request id.
FIELD_CHECKS = {
    "id empty": ({"type": "ping", "id": ""}, "id"),
    "id of 200 characters": ({"type": "ping", "id": "i" * 200}, "id"),
    "since a day in words": ({"type": "usage.query", "id": "r1", "since": "yesterday"}, "since"),
    "since 30 February": ({"type": "usage.query", "id": "r1", "since": "2026-02-30"}, "since"),
    "until 29 February of a common year": (
        {"type": "usage.query", "id": "r1", "until": "2026-02-29T00:00Z"},
        "until",
    ),
    "since with a newline after it": (
        {"type": "usage.query", "id": "r1", "since": "2026-11-28\n"},
        "since",
    ),
    "model with a newline after it": (
        {"type": "chat.send", "id": "r1", "content": "hi", "model": "claude\n"},
        "model",
    ),
    "agentId with a space": (
        {"type": "chat.send", "id": "r1", "content": "hi", "agentId": "two words"},
        "agentId",
    ),
    "agentId empty": ({"type": "chat.send", "id": "r1", "content": "hi", "agentId": ""}, "agentId"),
    "agentId of 129 characters": (
        {"type": "chat.send", "id": "r1", "content": "hi", "agentId": "a" * 129},
        "agentId",
    ),
    "agentId with a newline after it": (
        {"type": "chat.send", "id": "r1", "content": "hi", "agentId": "planner\n"},
        "agentId",
    ),
    "content only white space": (
        {"type": "chat.send", "id": "r1", "content": "\u3000\t\u2028"},
        "content",
    ),
    "since not a time": ({"type": "usage.query", "id": "r1", "since": "yesterday"}, "since"),
    "until not a date": ({"type": "usage.query", "id": "r1", "until": "2026-13-01"}, "until"),
    "since empty": ({"type": "usage.query", "id": "r1", "since": ""}, "since"),
    "until bad beside a good since": (
        {"type": "usage.query", "id": "r1", "since": "2026-11-01", "until": "soon"},
        "until",
    ),
    "cancel requestId empty": ({"type": "chat.cancel", "id": "r1", "requestId": " "}, "requestId"),
    "cancel requestId too long": (
        {"type": "chat.cancel", "id": "r1", "requestId": "r" * 129},
        "requestId",
    ),
    "list limit 0": ({"type": "session.list", "id": "r1", "limit": 0}, "limit"),
    "list limit 1001": ({"type": "session.list", "id": "r1", "limit": 1001}, "limit"),
    "list limit negative": ({"type": "session.list", "id": "r1", "limit": -5}, "limit"),
    "list after empty": ({"type": "session.list", "id": "r1", "after": ""}, "after"),
    "list after blank": ({"type": "session.list", "id": "r1", "after": "  "}, "after"),
    "list after too long": (
        {"type": "session.list", "id": "r1", "limit": 5, "after": "s" * 129},
        "after",
    ),
}


@pytest.mark.parametrize(("frame", "field"), FIELD_CHECKS.values(), ids=list(FIELD_CHECKS.keys()))
def test_length_range_and_format_checks_are_refused_by_both_per_field(
    schema: dict[str, Any], codec: WireCodec, frame: dict[str, Any], field: str
) -> None:
    assert not conforms(frame, schema, CLIENT)
    with pytest.raises(DecodeError) as refused:
        codec.decode(json.dumps(frame))
    assert refused.value.code == "INVALID_MESSAGE"
    readable_id = frame["id"] if len(frame["id"]) <= 128 else None
    assert refused.value.request_id == readable_id
    assert [problem["field"] for problem in refused.value.details] == [field]
    if field in ("since", "until"):
        assert refused.value.details[0]["message"] == ISO_8601


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-28T09:00:00Z", "2026-11-28T09:00:00.000Z"),
        ("2026-11-28T09:00:00.000Z", "2026-11-28T09:00:00.000Z"),
        ("2026-11-28T10:30:00+01:30", "2026-11-28T09:00:00.000Z"),
        ("2026-11-28T04:00:00-05:00", "2026-11-28T09:00:00.000Z"),
        # Milliseconds are the ledger's precision: finer digits are cut, not rounded.
        ("2026-11-28T09:00:00.123999Z", "2026-11-28T09:00:00.123Z"),
        # Without an offset the time is UTC; a date alone is its midnight.
        ("2026-11-28T09:00:00", "2026-11-28T09:00:00.000Z"),
        ("2026-11-28", "2026-11-28T00:00:00.000Z"),
        ("2026-11-29T00:30:00+01:00", "2026-11-28T23:30:00.000Z"),
        # Past either end of the years UTC can hold: that end, which selects the same rows.
        ("9999-12-31T23:00-05:00", "9999-12-31T23:59:59.999Z"),
        ("0001-01-01T00:30+01:00", "0001-01-01T00:00:00.000Z"),
        ("0001-01-01T00:30-01:00", "0001-01-01T01:30:00.000Z"),
    ],
)
def test_since_and_until_are_normalised_to_the_ledger_utc_form(
    codec: WireCodec, given: str, stored: str
) -> None:
    frame = {"type": "usage.query", "id": "u1", "since": given, "until": given}
    query = codec.decode(json.dumps(frame))
    assert isinstance(query, messages.UsageQuery)
    assert (query.since, query.until) == (stored, stored)


def test_the_new_client_keys_decode_into_their_fields(codec: WireCodec) -> None:
    cancel = codec.decode('{"type": "chat.cancel", "id": "x2", "requestId": "t2"}')
    assert cancel == messages.ChatCancel(id="x2", request_id="t2")
    assert codec.decode('{"type": "chat.cancel", "id": "x1"}') == messages.ChatCancel(id="x1")
    inspect = '{"type": "context.inspect", "id": "c1", "sessionId": "%s"%s}'
    assert codec.decode(inspect % (SESSION, "")) == messages.ContextInspect(
        id="c1", session_id=SESSION, exact=False
    )
    assert codec.decode(inspect % (SESSION, ', "exact": true')) == messages.ContextInspect(
        id="c1", session_id=SESSION, exact=True
    )


def _without(frame: dict[str, Any], path: str) -> dict[str, Any]:
    """A deep copy of ``frame`` with the key at the dotted ``path`` removed."""
    copy: dict[str, Any] = json.loads(json.dumps(frame))
    *parents, last = path.split(".")
    node = copy
    for step in parents:
        node = node[step]
    del node[last]
    return copy


@pytest.mark.parametrize(
    ("example", "path"),
    [
        (CANCELLED_UNPRICED, "sessionId"),
        (CANCELLED_UNPRICED, "stopReason"),
        (CANCELLED_UNPRICED, "usage.cacheCreationInputTokens"),
        (CANCELLED_UNPRICED, "usage.cacheReadInputTokens"),
        (CANCELLED_UNPRICED, "cost.priced"),
        (BARE_INSPECTION, "sessionId"),
        (BARE_INSPECTION, "model"),
        (MIXED_PRICING_REPORT, "perModel.my-local-model.priced"),
        (MIXED_PRICING_REPORT, "perModel.claude-sonnet-4-5.cacheReadInputTokens"),
    ],
    ids=lambda value: value if isinstance(value, str) else value.type,
)
def test_a_server_frame_missing_a_new_required_key_does_not_conform(
    schema: dict[str, Any], codec: WireCodec, example: ServerMessage, path: str
) -> None:
    frame = _encoded(codec, example)
    assert conforms(frame, schema, SERVER)
    assert not conforms(_without(frame, path), schema, SERVER)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "pong"},
        {"type": "pong", "requestId": "p1", "extra": 1},
        {"type": "session.created", "sessionId": SESSION, "sessionKey": None},
        {"type": "error", "code": "X", "message": "m", "requestId": None},
        # The last page leaves nextAfter out; null is not its spelling.
        {"type": "session.list", "requestId": "t1", "sessions": [], "nextAfter": None},
        {"type": "session.list", "requestId": "t1", "sessions": [], "nextAfter": 3},
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
        # The chat.stream.end of before the streaming work: no session, stop reason, cache
        # counts or priced flag.
        {
            "type": "chat.stream.end",
            "requestId": "t2",
            "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
            "cost": {"inputCost": 0, "outputCost": 0, "totalCost": 0},
        },
        {"type": "error", "code": "X", "message": "m", "retryable": "yes"},
        {"type": "error", "code": "X", "message": "m", "retryable": True, "retryAfterMs": 1.5},
        {"type": "error", "code": "X", "message": "m", "retryAfterMs": None},
    ],
)
def test_malformed_server_frames_do_not_conform(
    schema: dict[str, Any], frame: dict[str, Any]
) -> None:
    assert not conforms(frame, schema, SERVER)


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
    assert {key: _checks(value) for key, value in described["properties"].items()} == {
        "type": {"const": "echo"},
        "id": TEXT_128,
        "text": {"type": "string"},
        "times": {"type": "integer", "default": 1},
        "upper": {"type": "boolean", "default": False},
        "mode": {"enum": ["plain", "shout"], "default": "plain"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        # In a client message, null is one way to leave an optional key out.
        "weights": {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
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
    good = {"type": "echo", "id": "e1", "text": "hi", "times": 2, "mode": "shout", "tags": ["a"]}
    codec.decode(json.dumps(good))
    assert conforms(good, extended, CLIENT)
    for bad in ({**good, "mode": "whisper"}, {**good, "times": "2"}, {**good, "upper": 1}):
        with pytest.raises(DecodeError):
            codec.decode(json.dumps(bad))
        assert not conforms(bad, extended, CLIENT)
    reply = EchoReply(request_id="e1", text="hi hi", cost=Cost(cents=0), previous=None)
    assert conforms(json.loads(codec.encode(reply)), extended, SERVER)


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


# Each built-in client message and the handler setup.cfg registers for it.
BUILTIN_HANDLERS = {
    "chat.send": "chat_send:chat_send",
    "chat.cancel": "chat_cancel:chat_cancel",
    "context.inspect": "context_inspect:context_inspect",
    "usage.query": "usage_query:usage_query",
    "session.list": "session_list:session_list",
    "ping": "ping:ping",
    "session.history": "session_history:session_history",
    "budget.status": "budget_status:budget_status",
}


def test_protocol_command_names_the_installed_builtin_handlers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Read from the installed entry points: a stale install (pip install . again) fails."""
    monkeypatch.setenv("AGENTSPACE_HOME", str(tmp_path / "home"))
    assert main(["protocol"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    owners = {
        (tag, direction): owner
        for tag, direction, owner in (line.split(maxsplit=2) for line in lines)
    }
    package = f"agentspace-gateway {importlib.metadata.version('agentspace-gateway')}"
    assert set(BUILTIN_HANDLERS) | {"auth"} == set(CLIENT_SHAPES)
    for tag, target in BUILTIN_HANDLERS.items():
        expected = f"{package} ({tag} = agentspace_gateway.handlers.{target})"
        assert owners[(tag, "client")] == expected
    assert owners[("auth", "client")] == protocol_command.CONNECTION
    for tag in SERVER_SHAPES:
        assert owners[(tag, "server")] == protocol_command.BUILT_IN


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
