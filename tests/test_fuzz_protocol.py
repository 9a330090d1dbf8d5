"""A protocol fuzzer through the real stack: hostile frames are refused, nothing crashes.

Every frame is answered with a structured ``error`` (or its normal reply) or the connection
is closed with a proper code (1007, 1009); no handler fails (no INTERNAL_ERROR), nothing is
logged at ERROR (nor at WARNING by the gateway itself), and the gateway answers ``ping``
afterwards. Frames go out in batches over
one reused connection, each batch followed by a sentinel ``ping``.

``HYPOTHESIS_PROFILE=fuzz`` (``tox -e fuzz``) runs many more examples than the default run.
"""

import asyncio
import collections
import contextlib
import json
import logging
import os
import typing
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import attrs
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from attrs import frozen
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentspace_gateway.config import AnthropicConfig, Config, GatewayConfig
from agentspace_gateway.handler_registry import load_registry
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.connection_messages import Auth, Pong
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.message_base import ClientMessage
from agentspace_gateway.protocol.wire import camel

from conftest import TEST_API_KEY, inline_plugin

settings.register_profile(
    "default",
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("fuzz", settings.get_profile("default"), max_examples=2000)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

KNOWN: list[type[ClientMessage]] = [*load_registry([]).message_classes, Auth]
ERROR_CODES = {code.value for code in ErrorCode}
NOT_TERMINAL = {"chat.stream.start", "chat.stream.delta", "session.created"}
FRAME_LIMIT = 64 * 1024
STATS: collections.Counter[str] = collections.Counter()

# -- strategies ---------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
# Any text, lone surrogates included: json.dumps escapes them as \ud800, valid JSON that is
# not Unicode.
any_text = st.text(st.characters() | SURROGATES, max_size=40)
huge_numbers = st.sampled_from(
    ["1" * 5000, "-" + "9" * 4301, "1e999999", "-1e999999", "1" * 4300 + ".5", "0." + "0" * 5000]
)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
        max_leaves=12,
    )


def _field_types(cls: type[ClientMessage]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {a.name: hints[a.name] for a in attrs.fields(cls)}


PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["claude-sonnet-5-5", "claude-sonnet-5.5", "x", "a" * 101, "../x"]),
    "since": st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "yesterday"]),
    "until": st.sampled_from(["2030-01-01", "0001-01-01T00:00:00+23:59", ""]),
    "session_id": st.sampled_from(["nope", "agent:default:nope", "x" * 129, "\udc00"]) | any_text,
    "content": st.sampled_from(["hello", " ", "x" * 1000, "hi \ud83d"]) | any_text,
    "token": st.sampled_from(["wrong", "x" * 513]) | any_text,
}


def plausible_value(name: str, declared: Any) -> st.SearchStrategy[Any]:
    if name in PLAUSIBLE:
        return PLAUSIBLE[name]
    # In declaration order, so that a failure's reproduction blob replays the same draws.
    options = list(dict.fromkeys(typing.get_args(declared))) or [declared]
    strategies: list[st.SearchStrategy[Any]] = []
    for option in options:
        if option is str:
            strategies.append(any_text.filter(str.strip))
        elif option is int:
            strategies.append(st.integers(-10, 2000))
        elif option is bool:
            strategies.append(st.booleans())
        elif option is type(None):
            strategies.append(st.none())
        else:
            strategies.append(json_values())
    return st.one_of(strategies)


@st.composite
def known_message(draw: st.DrawFn) -> dict[str, Any]:
    """A message of a known type, valid or nearly so, then mutated: the interesting cases."""
    cls = draw(st.sampled_from(KNOWN))
    message: dict[str, Any] = {"type": cls.type}
    for name, declared in _field_types(cls).items():
        if draw(st.integers(0, 5)) or name == "id":
            message[camel(name)] = draw(plausible_value(name, declared))
    for _ in range(draw(st.integers(0, 2))):
        mutation = draw(st.sampled_from(["drop", "retype", "extra", "snake", "type"]))
        keys = sorted(message)
        if mutation == "drop":
            message.pop(draw(st.sampled_from(keys)))
        elif mutation == "retype":
            message[draw(st.sampled_from(keys))] = draw(json_values())
        elif mutation == "extra":
            message[draw(any_text)] = draw(json_values())
        elif mutation == "snake":
            message["session_id"] = "x"
        else:
            message["type"] = draw(st.sampled_from([cls.type.upper(), cls.type + " ", "", "x.y"]))
    return message


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def dumps_for_the_wire(message: Any) -> str:
    """JSON with non-ASCII text as is, escaping only what UTF-8 cannot carry."""
    text = json.dumps(message, ensure_ascii=False)
    return json.dumps(message) if has_surrogate(text) else text


# Shallow enough to parse, or far too deep: never near the recursion limit, where the
# gateway and this test (on a deeper stack) could disagree about the same frame.
depths = st.integers(1, 200) | st.integers(5_000, 30_000)


valid_messages = st.sampled_from(
    [
        {"type": "ping", "id": "p"},
        {"type": "session.list", "id": "s"},
        {"type": "usage.query", "id": "u", "since": "2026-01-01T00:00:00Z"},
        {"type": "chat.send", "id": "c", "content": "hello"},
        {"type": "chat.send", "id": "c2", "content": "more", "model": "claude-sonnet-5.5"},
        {"type": "chat.cancel", "id": "x"},
        {"type": "context.inspect", "id": "i", "sessionId": "nope"},
    ]
)


def nested(depth: int, closed: bool) -> str:
    return "[" * depth + ("]" * depth if closed else "")


text_frames = st.one_of(
    valid_messages.map(json.dumps),
    known_message().map(lambda m: json.dumps(m, ensure_ascii=True)),
    known_message().map(dumps_for_the_wire),
    json_values().map(json.dumps),
    json_values().map(dumps_for_the_wire),
    any_text.filter(lambda t: not has_surrogate(t)),
    st.builds(nested, depths, st.booleans()),
    depths.map(lambda d: '{"type":"ping","id":"n","x":' + nested(d, True) + "}"),
    huge_numbers.map(lambda n: '{"type":"ping","id":' + n + "}"),
    huge_numbers.map(lambda n: '{"type":"usage.query","id":"h","limit":' + n + "}"),
    st.sampled_from(["NaN", "Infinity", '{"type":"ping","id":NaN}', '{"id":"\\ud800"}', "{}"]),
)


class Frame:
    def __init__(self, kind: str, data: Any) -> None:
        self.kind = kind  # "text" or "binary"
        self.data = data

    def __iter__(self) -> Iterator[Any]:
        return iter((self.kind, self.data))

    def __repr__(self) -> str:
        # Deep nesting makes frames long; a falsifying example should still be readable.
        shown = repr(self.data)
        return f"Frame({self.kind}, {shown[:300]}{'...' if len(shown) > 300 else ''})"


frames = st.one_of(
    text_frames.filter(lambda t: len(t.encode("utf-8")) < FRAME_LIMIT).map(
        lambda t: Frame("text", t)
    ),
    st.binary(max_size=64).map(lambda b: Frame("binary", b)),
)


# -- what a frame should be answered with -------------------------------------------------


def readable_id(text: str) -> tuple[str | None, Any]:
    """The id the gateway can echo (the requestId rule in docs/protocol.md), and the type."""
    try:
        data = json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    raw = data.get("id")
    readable = isinstance(raw, str) and len(raw) <= 128 and not has_surrogate(raw)
    return (raw if readable else None), data.get("type")


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Expectation:
    """What a batch must be answered with, matched by requestId (or its absence)."""

    def __init__(self, sent: list[Frame]) -> None:
        self.chat_ids: collections.Counter[str] = collections.Counter()
        # Frames with no readable id: each gets exactly one error without requestId...
        self.anonymous = 0
        # ...except auth, whose id may be left out: a valid one is answered auth.ok.
        self.anonymous_auth = 0
        self.required: collections.Counter[str] = collections.Counter()
        # auth may be answered auth.ok (no requestId), and a chat.cancel that works has no
        # reply of its own: its stream ends "cancelled" instead.
        self.optional: collections.Counter[str] = collections.Counter()
        self.auth_frames = 0
        for kind, data in sent:
            request_id, tag = (None, None) if kind == "binary" else readable_id(data)
            self.auth_frames += tag == "auth"
            if request_id is not None and tag == "chat.send":
                self.chat_ids[request_id] += 1
            if request_id is None:
                if tag == "auth":
                    self.anonymous_auth += 1
                else:
                    self.anonymous += 1
            elif tag in ("auth", "chat.cancel"):
                self.optional[request_id] += 1
            else:
                self.required[request_id] += 1


class Replies:
    def __init__(self) -> None:
        self.all: list[dict[str, Any]] = []
        self.terminal: collections.Counter[str] = collections.Counter()
        self.anonymous_errors = 0
        self.auth_ok = 0
        self.open_streams: set[str] = set()

    def add(self, message: dict[str, Any]) -> None:
        self.all.append(message)
        kind, request_id = message["type"], message.get("requestId")
        if kind == "error":
            assert message["code"] in ERROR_CODES, message
            assert isinstance(message["message"], str), message
            assert message["message"], message
            assert message["code"] != ErrorCode.INTERNAL_ERROR, message
        if kind == "chat.stream.start":
            self.open_streams.add(request_id)
        if kind in ("chat.stream.end", "error") and request_id is not None:
            self.open_streams.discard(request_id)
        if kind == "error" and request_id is None:
            self.anonymous_errors += 1
        elif kind == "auth.ok":
            self.auth_ok += 1
        elif request_id is not None and kind not in NOT_TERMINAL:
            self.terminal[request_id] += 1

    def satisfies(self, expected: Expectation) -> bool:
        return (
            self.anonymous_errors >= expected.anonymous
            and all(self.terminal[i] >= n for i, n in expected.required.items())
            and not self.open_streams
        )


async def exchange_batch(ws: ClientWebSocketResponse, sent: list[Frame], sentinel: str) -> Replies:
    expected = Expectation(sent)
    # A reply is matched to its frame by requestId; when a frame that may go unanswered
    # shares its id with one that may not, the count cannot tell whose reply came.
    assume(not set(expected.required) & set(expected.optional))
    # A stream is followed by its requestId from start to end: two chat.send sharing one id
    # (the second answered STREAM_IN_PROGRESS) would make its end look early.
    assume(all(expected.required[i] == 1 for i in expected.chat_ids))
    for kind, data in sent:
        if kind == "binary":
            await ws.send_bytes(data)
        else:
            await ws.send_str(data)
    await ws.send_str(json.dumps({"type": "ping", "id": sentinel}))
    replies = Replies()
    seen_sentinel = False
    while not (seen_sentinel and replies.satisfies(expected)):
        try:
            frame = await ws.receive(timeout=15)
        except TimeoutError:
            missing = {i: n - replies.terminal[i] for i, n in expected.required.items()}
            raise AssertionError(
                f"no reply for 15 s: sentinel seen {seen_sentinel}, anonymous errors "
                f"{replies.anonymous_errors}/{expected.anonymous}, streams open "
                f"{replies.open_streams}, missing "
                f"{ {i: n for i, n in missing.items() if n > 0} }; sent {sent}; got {replies.all}"
            ) from None
        assert frame.type is WSMsgType.TEXT, (frame, ws.close_code, sent, replies.all)
        message = json.loads(frame.data)
        if message.get("requestId") == sentinel:
            assert message["type"] == "pong", message
            seen_sentinel = True
            continue
        replies.add(message)
    assert (
        expected.anonymous
        <= replies.anonymous_errors
        <= expected.anonymous + expected.anonymous_auth
    ), (sent, replies.all)
    for request_id, count in replies.terminal.items():
        allowed = expected.required[request_id] + expected.optional[request_id]
        assert count <= allowed, (request_id, sent, replies.all)
    assert replies.auth_ok <= expected.auth_frames
    return replies


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors and tracebacks from anywhere, and the gateway's own warnings."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or r.exc_info is not None
        or (r.levelno >= logging.WARNING and r.name.startswith("agentspace_gateway"))
    ]


# -- the tests ----------------------------------------------------------------------------


def fuzz_config(base_url: str, **gateway: Any) -> Config:
    # The fuzzer sends faster than the default per-connection limits on purpose, so that its
    # frames reach the handlers; the limits have their own tests (test_security_flood.py).
    return Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0, timeout_seconds=5.0),
        gateway=GatewayConfig(
            messages_per_second=1e6, message_burst=10**6, max_inflight_messages=1000, **gateway
        ),
    )


@pytest.fixture
async def fuzz_client(make_client, fake_anthropic, passphrase, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    _, base_url = fake_anthropic
    # The built-in handlers only: the test plugins include one that crashes on purpose.
    return await make_client(fuzz_config(base_url), plugins=[])


@pytest.fixture
async def link(fuzz_client) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """One connection, reused by every example while it stays open."""
    held: dict[str, Any] = {"client": fuzz_client, "ws": None}
    yield held
    if held["ws"] is not None:
        await held["ws"].close()


@settings(PROFILE)
@given(batch=st.lists(frames, min_size=20, max_size=60))
async def test_fuzzed_frames_get_structured_answers(
    link: dict[str, Any], caplog: pytest.LogCaptureFixture, batch: list[Frame]
) -> None:
    caplog.set_level(logging.WARNING)
    if link["ws"] is None or link["ws"].closed:
        link["ws"] = await link["client"].ws_connect("/gateway")
    STATS["batches"] += 1
    try:
        replies = await exchange_batch(link["ws"], batch, f"sentinel-{STATS['batches']}")
    except BaseException:
        # Replies left unread would be taken for the next example's: start that one afresh.
        ws, link["ws"] = link["ws"], None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
        raise
    STATS["frames"] += len(batch)
    STATS["errors"] += sum(1 for m in replies.all if m["type"] == "error")
    assert not link["ws"].closed
    assert logged_errors(caplog) == []


@pytest.mark.parametrize(
    ("frame", "request_id", "field"),
    [
        # Echoed back as requestId, the surrogate killed the connection's writer (no reply,
        # "Error handling request" logged); stored, it crashed the handler in SQLite.
        ('{"type":"ping","id":"\\ud800"}', None, "id"),
        ('{"type":"context.inspect","id":"c","sessionId":"\\udc00"}', "c", "sessionId"),
        ('{"type":"chat.send","id":"s","content":"hi \\ud83d"}', "s", "content"),
        ('{"type":"session.list","id":"l","x\\udfff":1}', "l", "x\\udfff"),
    ],
)
async def test_frames_the_fuzzer_found(
    link: dict[str, Any], caplog: pytest.LogCaptureFixture, frame: str, request_id: str, field: str
) -> None:
    caplog.set_level(logging.WARNING)
    async with link["client"].ws_connect("/gateway") as ws:
        await ws.send_str(frame)
        reply = await ws.receive_json(timeout=5)
        assert reply["code"] == "INVALID_MESSAGE"
        assert reply.get("requestId") == request_id
        assert [problem["field"] for problem in reply["details"]] == [field]
        await ws.send_str('{"type":"ping","id":"after"}')
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
    assert logged_errors(caplog) == []


@pytest.mark.parametrize(
    "frame",
    [
        # Past the last UTC time: was reported against "message", not the field; now the
        # range's end stands for it, as it selects the same usage (and the schema agrees).
        '{"type":"usage.query","id":"u","since":"9999-12-31T23:59:59-23:59"}',
        '{"type":"usage.query","id":"u","until":"0001-01-01T00:00:00+23:59"}',
    ],
)
async def test_times_past_the_utc_range_are_answered(
    link: dict[str, Any], caplog: pytest.LogCaptureFixture, frame: str
) -> None:
    caplog.set_level(logging.WARNING)
    async with link["client"].ws_connect("/gateway") as ws:
        await ws.send_str(frame)
        reply = await ws.receive_json(timeout=5)
    assert (reply["type"], reply["requestId"], reply["perModel"]) == ("usage.report", "u", {})
    assert logged_errors(caplog) == []


@frozen(kw_only=True)
class BadReply(ClientMessage):
    type: ClassVar[str] = "test.bad_reply"


@handles(BadReply, replies=[Pong])
async def bad_reply(context: ConnectionContext, message: BadReply) -> None:
    """A plugin that puts a lone surrogate in a reply, as one echoing its input might."""
    context.send(Pong(request_id=message.id + "\udc80"))


async def test_a_reply_that_is_not_unicode_costs_a_character_not_the_connection(
    make_client, passphrase, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = inline_plugin("test.bad_reply", "test_fuzz_protocol:bad_reply")
    client = await make_client(plugins=[plugin])
    async with client.ws_connect("/gateway") as ws:
        await ws.send_str('{"type":"test.bad_reply","id":"b"}')
        assert await ws.receive_json(timeout=5) == {"type": "pong", "requestId": "b?"}
        await ws.send_str('{"type":"ping","id":"after"}')
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
    [warning] = [r for r in caplog.records if "lone surrogate" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


BAD_UTF8 = st.one_of(
    st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]),
    st.binary(min_size=1, max_size=64).filter(lambda b: not _is_utf8(b)),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(PROFILE, max_examples=max(30, PROFILE.max_examples // 4))
@given(prefix=st.sampled_from([b"", b'{"type":"ping","id":"', b"hello "]), bad=BAD_UTF8)
async def test_text_that_is_not_utf8_closes_with_1007(
    fuzz_client, caplog: pytest.LogCaptureFixture, prefix: bytes, bad: bytes
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    async with fuzz_client.ws_connect("/gateway") as ws:
        await ws.send_frame(prefix + bad, WSMsgType.TEXT)
        frame = await ws.receive(timeout=5)
        assert (frame.type, frame.data) == (WSMsgType.CLOSE, 1007)
    STATS["closing"] += 1
    async with fuzz_client.ws_connect("/gateway") as ws:
        await ws.send_str('{"type":"ping","id":"after"}')
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
    assert logged_errors(caplog) == []


@pytest.fixture
async def small_frames_client(make_client, passphrase):  # type: ignore[no-untyped-def]
    return await make_client(Config(gateway=GatewayConfig(max_frame_bytes=4096)))


@settings(PROFILE, max_examples=max(20, PROFILE.max_examples // 5))
@given(size=st.integers(4097, 200_000), binary=st.booleans())
async def test_frames_over_the_limit_close_with_1009(
    small_frames_client, caplog: pytest.LogCaptureFixture, size: int, binary: bool
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    async with small_frames_client.ws_connect("/gateway") as ws:
        if binary:
            await ws.send_bytes(b"\x00" * size)
        else:
            await ws.send_str('{"type":"ping","id":"' + "x" * size + '"}')
        frame = await ws.receive(timeout=5)
        assert (frame.type, frame.data) == (WSMsgType.CLOSE, 1009)
    STATS["closing"] += 1
    async with small_frames_client.ws_connect("/gateway") as ws:
        await ws.send_str('{"type":"ping","id":"after"}')
        assert (await ws.receive_json(timeout=5))["type"] == "pong"
    assert logged_errors(caplog) == []


def test_report_what_was_fuzzed() -> None:
    """Runs last in this module: prints the figures docs/reliability.md quotes (pytest -s)."""
    print(
        f"\nfuzzed {STATS['frames']} frames in {STATS['batches']} batches "
        f"({STATS['errors']} answered with an error) and {STATS['closing']} closing frames"
    )
    assert STATS["frames"] >= STATS["batches"] * 20
