"""A fake Anthropic Messages API that speaks the real wire protocol, for tests.

The real `anthropic` SDK (and so the gateway) can be pointed at it with `base_url` or
ANTHROPIC_BASE_URL. A test decides what the next `/v1/messages` requests do by queueing
`Scenario`s; when the queue is empty the fake streams `Scenario()`, a normal reply.

In process::

    async with running_fake_anthropic() as (fake, base_url):
        fake.enqueue(Scenario.overloaded(), Scenario(text_chunks=["Hi"]))
        ...

As a process: `python tests/fake_anthropic.py --port 0` prints
`listening on http://127.0.0.1:PORT`; `POST /_fake/scenarios` (a JSON list of Scenario
fields) queues scenarios and `GET /_fake/requests` / `GET /_fake/replies` report back.

Token counts are deterministic: a request's input tokens are the characters of every text
in `system` and `messages` (plain strings, `text` fields, nested `content`), // 4, + 1.
A stream's output tokens default to one per text chunk sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import signal
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DEFAULT_CHUNKS = ("Hello", ", ", "world", "!")
MAX_ENDLESS_CHUNKS = 100_000
PROMPT_TOO_LONG = "prompt is too long: 210000 tokens > 200000 maximum"

# The error type and message the real API sends with each status.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", PROMPT_TOO_LONG),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed your organization's rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass
class Scenario:
    """What one `/v1/messages` request does. Every `*_after` counts text deltas already sent."""

    text_chunks: list[str] = field(default_factory=lambda: list(DEFAULT_CHUNKS))
    input_tokens: int | None = None  # None: counted from the request
    output_tokens: int | None = None  # None: one per chunk sent
    cache_creation_input_tokens: int = 0  # every cache write, as the real API's flat figure
    cache_read_input_tokens: int = 0
    # The one-hour part of cache_creation_input_tokens; the rest are five-minute writes.
    cache_creation_1h_input_tokens: int = 0
    stop_reason: str = "end_turn"
    delay_between_chunks: float = 0.0
    ping_every: int | None = None
    delay_before_stream: float = 0.0  # before any response header: the SDK's APITimeoutError
    status_before_stream: int | None = None
    error_type: str | None = None  # None: the real API's type for the status
    error_message: str | None = None
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra headers on the response
    error_event_after: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 30.0
    # Set: the stall ends when this is set (or stall_seconds pass), and the stream goes on.
    stall_until: asyncio.Event | None = None
    malformed_after: int | None = None
    unknown_event_after: int | None = None
    message_start_without_usage: bool = False
    endless: bool = False
    # Content blocks sent before the text one, each {"type": "thinking", "thinking": [chunks],
    # "signature": str} or {"type": "tool_use", "id", "name", "input_json": [chunks]}:
    # streamed as thinking_delta + signature_delta and input_json_delta, as the API does.
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def error(cls, status: int, message: str | None = None, **knobs: Any) -> Scenario:
        return cls(status_before_stream=status, error_message=message, **knobs)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Scenario:
        return cls.error(429, retry_after=retry_after)

    @classmethod
    def overloaded(cls, retry_after: str | None = None) -> Scenario:
        return cls.error(529, retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Scenario:
        return cls.error(500)

    @classmethod
    def prompt_too_long(cls) -> Scenario:
        return cls.error(400, PROMPT_TOO_LONG)

    @classmethod
    def unauthorized(cls) -> Scenario:
        return cls.error(401)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    json: Any  # None when the body was not JSON
    received_at: float  # time.monotonic()
    body: bytes = b""  # exactly as received
    query: str = ""  # the query string, as received
    # The client's address and port as the fake saw them: one per TCP connection.
    peer: Any = None

    @property
    def api_key(self) -> str | None:
        """The key sent: anthropic 2.x sends `Authorization: Bearer`, older SDKs `x-api-key`."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class Reply:
    """One reply to `/v1/messages`. outcome: pending, streaming, completed, error_status,
    error_event, dropped, disconnected (the client went away first) or released (shutdown)."""

    request: RecordedRequest
    scenario: Scenario
    started_at: float
    chunks_sent: int = 0
    last_chunk_at: float | None = None
    ended_at: float | None = None
    outcome: str = "pending"

    @property
    def after_last_chunk(self) -> float:
        """Seconds from the last text chunk written (or the request) to the end."""
        assert self.ended_at is not None
        return self.ended_at - (self.last_chunk_at or self.started_at)


class _Ended(Exception):
    """The scenario ends the stream early; the handler stops writing."""


def count_input_tokens(body: Any) -> int:
    def chars(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, list):
            return sum(chars(item) for item in value)
        if isinstance(value, dict):
            text = value.get("text")
            return len(text) if isinstance(text, str) else chars(value.get("content"))
        return 0

    if not isinstance(body, dict):
        return 1
    messages = body.get("messages")
    return (
        chars(body.get("system")) + chars(messages if isinstance(messages, list) else [])
    ) // 4 + 1


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class FakeAnthropic:
    def __init__(self, accepted_keys: set[str] | None = None) -> None:
        self.accepted_keys = accepted_keys  # None: any non-empty key
        self.default = Scenario()
        self.scenarios: deque[Scenario] = deque()
        self.requests: list[RecordedRequest] = []
        self.replies: list[Reply] = []
        self.disconnects: list[Reply] = []  # in the order they were seen
        self._released = asyncio.Event()
        self._news = asyncio.Event()  # set on every request and disconnect
        self._disconnects_awaited = 0

    def enqueue(self, *scenarios: Scenario) -> None:
        self.scenarios.extend(scenarios)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until `count` `/v1/messages` requests have arrived."""
        await self._wait_until(lambda: len(self.message_requests) >= count, timeout, "requests")
        return self.message_requests

    async def wait_for_disconnect(self, timeout: float = 1.0) -> float:
        """Wait for the next client disconnect not yet waited for; return its `after_last_chunk`.

        Its Reply is in `fake.disconnects`, in the order seen; `ended_at` (time.monotonic())
        is when the fake saw the connection close, to compare with when a test cancelled.
        """
        seen = self._disconnects_awaited
        await self._wait_until(lambda: len(self.disconnects) > seen, timeout, "client disconnect")
        self._disconnects_awaited += 1
        return self.disconnects[seen].after_last_chunk

    async def _wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    self._news.clear()
                    await self._news.wait()
        except TimeoutError:
            outcomes = [reply.outcome for reply in self.replies]
            raise TimeoutError(
                f"fake Anthropic saw no {what} within {timeout} s; replies so far: {outcomes}"
            ) from None

    def release(self) -> None:
        """End every delay, stall and endless stream now, so the server can shut down at once."""
        self._released.set()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/_fake/scenarios", self._control_scenarios)
        app.router.add_get("/_fake/requests", self._control_requests)
        app.router.add_get("/_fake/replies", self._control_replies)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

        async def release(app: web.Application) -> None:
            self.release()

        app.on_shutdown.append(release)
        return app

    # -- the API ------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            json=body,
            received_at=time.monotonic(),
            body=raw,
            query=request.query_string,
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        self.requests.append(recorded)
        self._news.set()
        return recorded

    def _refusal(self, recorded: RecordedRequest, required: tuple[str, ...]) -> web.Response | None:
        """The real API's answer to a request it would not accept, checked before any scenario."""
        key = recorded.api_key
        if not key or (self.accepted_keys is not None and key not in self.accepted_keys):
            return error_response(401)
        if "anthropic-version" not in recorded.headers:
            return error_response(400, message="anthropic-version: header is required")
        body = recorded.json
        if not isinstance(body, dict):
            return error_response(400, message="The request body is not valid JSON.")
        for name in required:
            if name not in body:
                return error_response(400, message=f"{name}: Field required")
        if not isinstance(body["messages"], list):
            return error_response(400, message="messages: Input should be a valid list")
        return None

    async def _count_tokens(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(recorded, ("model", "messages"))
        if refusal is not None:
            return refusal
        return web.json_response(
            {"input_tokens": count_input_tokens(recorded.json)},
            headers={"request-id": new_request_id()},
        )

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return error_response(404, message=f"Not found: {request.method} {request.path}")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        refusal = self._refusal(recorded, ("model", "max_tokens", "messages"))
        if refusal is not None:
            return refusal
        scenario = self.scenarios.popleft() if self.scenarios else self.default
        reply = Reply(recorded, scenario, started_at=time.monotonic())
        self.replies.append(reply)
        try:
            return await self._reply(request, reply)
        except asyncio.CancelledError:
            # The test server cancels a handler whose client has gone away.
            self._disconnected(reply)
            raise
        finally:
            reply.ended_at = reply.ended_at or time.monotonic()

    def _disconnected(self, reply: Reply) -> None:
        if reply.outcome in ("pending", "streaming") and not self._released.is_set():
            reply.outcome = "disconnected"
            reply.ended_at = time.monotonic()
            self.disconnects.append(reply)
            self._news.set()

    async def _reply(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        scenario, body = reply.scenario, reply.request.json
        if scenario.delay_before_stream:
            await self._pause(scenario.delay_before_stream)
            if self._released.is_set():
                reply.outcome = "released"
                return error_response(500, message="The fake Anthropic API is shutting down.")
        if scenario.status_before_stream is not None:
            reply.outcome = "error_status"
            headers = dict(scenario.headers)
            if scenario.retry_after is not None:
                headers["retry-after"] = scenario.retry_after
            return error_response(
                scenario.status_before_stream,
                scenario.error_type,
                scenario.error_message,
                headers=headers,
            )
        if body.get("stream"):
            return await self._stream(request, reply)
        output_tokens = scenario.output_tokens
        if output_tokens is None:
            output_tokens = len(scenario.text_chunks)
        message = self._message(scenario, body, self._usage(scenario, body, output_tokens))
        message["content"] = [
            *(_whole_block(block) for block in scenario.blocks),
            {"type": "text", "text": "".join(scenario.text_chunks)},
        ]
        message["stop_reason"] = scenario.stop_reason
        reply.outcome = "completed"
        return web.json_response(
            message, headers={"request-id": new_request_id(), **scenario.headers}
        )

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": new_request_id(),
                **reply.scenario.headers,
            }
        )
        await response.prepare(request)
        reply.outcome = "streaming"
        try:
            await self._write_events(request, response, reply)
        except _Ended:
            pass
        except ConnectionResetError:
            self._disconnected(reply)
        return response

    async def _write_events(
        self, request: web.Request, response: web.StreamResponse, reply: Reply
    ) -> None:
        scenario, body = reply.scenario, reply.request.json

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(_sse(event, {"type": event, **data}))

        if scenario.message_start_without_usage:
            # The SDK's MessageStream cannot accumulate a message_start that has no usage
            # (AttributeError on the first message_delta), so send zeros, as an API that
            # counts late would; message_delta still carries the cumulative totals.
            usage = self._usage(scenario, body, 0)
            usage.update(input_tokens=0, cache_creation_input_tokens=0, cache_read_input_tokens=0)
        else:
            usage = self._usage(scenario, body, 1)
        await send("message_start", {"message": self._message(scenario, body, usage)})
        for index, block in enumerate(scenario.blocks):
            for event, data in _block_events(index, block):
                await send(event, data)
        text_index = len(scenario.blocks)
        await send(
            "content_block_start",
            {"index": text_index, "content_block": {"type": "text", "text": ""}},
        )
        await send("ping", {})
        chunks: Iterable[str] = scenario.text_chunks
        if scenario.endless:
            chunks = itertools.islice(itertools.cycle(chunks or DEFAULT_CHUNKS), MAX_ENDLESS_CHUNKS)
        for text in chunks:
            if reply.chunks_sent and scenario.delay_between_chunks:
                await self._pause(scenario.delay_between_chunks)
            await self._interrupt(request, response, reply)
            await send(
                "content_block_delta",
                {"index": text_index, "delta": {"type": "text_delta", "text": text}},
            )
            reply.chunks_sent += 1
            reply.last_chunk_at = time.monotonic()
            if scenario.ping_every and reply.chunks_sent % scenario.ping_every == 0:
                await send("ping", {})
        await self._interrupt(request, response, reply)
        await send("content_block_stop", {"index": text_index})
        output_tokens = scenario.output_tokens
        if output_tokens is None:
            output_tokens = reply.chunks_sent
        # Like the current API: cumulative totals, input and cache counts included.
        usage = self._usage(scenario, body, output_tokens)
        del usage["cache_creation"], usage["service_tier"]
        delta = {"stop_reason": scenario.stop_reason, "stop_sequence": None}
        await send("message_delta", {"delta": delta, "usage": usage})
        await send("message_stop", {})
        await response.write_eof()
        reply.outcome = "completed"

    async def _interrupt(
        self, request: web.Request, response: web.StreamResponse, reply: Reply
    ) -> None:
        """Do what the scenario asks for once `reply.chunks_sent` deltas are out."""
        scenario, sent = reply.scenario, reply.chunks_sent
        if scenario.unknown_event_after == sent:
            update = {"type": "thinking_budget_update", "budget_tokens": 1024}
            await response.write(_sse("thinking_budget_update", update))
        if scenario.malformed_after == sent:
            await response.write(b'event: content_block_delta\ndata: {"type": "content_bl\n\n')
        if scenario.stall_after == sent:
            if scenario.stall_until is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(scenario.stall_until.wait(), scenario.stall_seconds)
            else:
                await self._pause(scenario.stall_seconds)
        if scenario.error_event_after == sent:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            await response.write(_sse("error", {"type": "error", "error": error}))
            await response.write_eof()
            reply.outcome = "error_event"
            raise _Ended
        if self._released.is_set() or scenario.drop_after == sent:
            reply.outcome = "released" if self._released.is_set() else "dropped"
            if request.transport is not None:
                request.transport.abort()
            raise _Ended

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the fake is released for shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), seconds)

    def _usage(self, scenario: Scenario, body: Any, output_tokens: int) -> dict[str, Any]:
        input_tokens = scenario.input_tokens
        if input_tokens is None:
            input_tokens = count_input_tokens(body)
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": scenario.cache_creation_input_tokens,
            "cache_read_input_tokens": scenario.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": scenario.cache_creation_input_tokens
                - scenario.cache_creation_1h_input_tokens,
                "ephemeral_1h_input_tokens": scenario.cache_creation_1h_input_tokens,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(self, scenario: Scenario, body: Any, usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }

    # -- control, for a fake running as its own process ---------------------------------

    async def _control_scenarios(self, request: web.Request) -> web.Response:
        try:
            self.enqueue(*[Scenario(**fields) for fields in await request.json()])
        except (TypeError, ValueError) as error:
            return web.json_response(
                {"error": f"not a list of Scenario fields: {error}"}, status=400
            )
        return web.json_response({"queued": len(self.scenarios)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        recorded = []
        for request_ in self.requests:
            fields = dataclasses.asdict(request_)
            fields["body"] = request_.body.decode("utf-8", "replace")
            recorded.append(fields)
        return web.json_response(recorded)

    async def _control_replies(self, request: web.Request) -> web.Response:
        fields = ("outcome", "chunks_sent", "started_at", "last_chunk_at", "ended_at")
        return web.json_response(
            [{name: getattr(reply, name) for name in fields} for reply in self.replies]
        )


def _whole_block(block: dict[str, Any]) -> dict[str, Any]:
    if block["type"] == "thinking":
        thinking = "".join(block["thinking"])
        return {"type": "thinking", "thinking": thinking, "signature": block["signature"]}
    whole_input = json.loads("".join(block["input_json"]) or "{}")
    return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": whole_input}


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    def delta(value: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {"index": index, "delta": value}

    start: dict[str, Any]
    if block["type"] == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": t}) for t in block["thinking"]]
        deltas.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        deltas = [
            delta({"type": "input_json_delta", "partial_json": part})
            for part in block["input_json"]
        ]
    return [
        ("content_block_start", {"index": index, "content_block": start}),
        *deltas,
        ("content_block_stop", {"index": index}),
    ]


def new_request_id() -> str:
    return f"req_fake{uuid.uuid4().hex[:20]}"


def error_response(
    status: int,
    error_type: str | None = None,
    message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    default_type, default_message = ERRORS.get(status, ("api_error", "Internal server error"))
    request_id = new_request_id()
    error = {"type": error_type or default_type, "message": message or default_message}
    return web.json_response(
        {"type": "error", "error": error, "request_id": request_id},
        status=status,
        reason="Overloaded" if status == 529 else None,
        headers={"request-id": request_id, **(headers or {})},
    )


@contextlib.asynccontextmanager
async def running_fake_anthropic(
    fake: FakeAnthropic | None = None, *, port: int = 0
) -> AsyncIterator[tuple[FakeAnthropic, str]]:
    """Serve a fake on 127.0.0.1 (an ephemeral port by default); yield it and its base URL."""
    fake = fake or FakeAnthropic()
    server = TestServer(fake.make_app(), host="127.0.0.1", port=port)
    # The handler is cancelled when its client goes away: that is how disconnects are seen.
    await server.start_server(shutdown_timeout=2.0)
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        fake.release()
        await server.close()


async def _serve(port: int, accepted_keys: set[str] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_fake_anthropic(FakeAnthropic(accepted_keys), port=port) as (_, base_url):
        print(f"listening on {base_url}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Anthropic Messages API for tests.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--accept-key", action="append", help="accept only these x-api-keys")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, set(args.accept_key) if args.accept_key else None))


if __name__ == "__main__":
    main()
