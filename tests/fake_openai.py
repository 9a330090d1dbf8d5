"""A fake OpenAI-compatible chat completions API that speaks the real wire protocol.

The real ``openai`` SDK (and so the gateway) can be pointed at it with ``base_url``. Tests
queue ``Scenario``s for the next ``POST /v1/chat/completions`` requests; with none queued
the fake answers ``Scenario()``, a normal reply.

The protocol, as OpenAI's API serves it: a stream is ``chat.completion.chunk`` objects as
``data:`` lines, the first delta carrying the role, one chunk with the ``finish_reason``,
then, only when the request set ``stream_options.include_usage``, a last chunk with empty
``choices`` and the ``usage``, then ``data: [DONE]``. Errors are
``{"error": {"message", "type", "param", "code"}}``.

Token counts are deterministic: prompt tokens are the characters of every message's text
// 4 + 1; completion tokens one per chunk sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DEFAULT_CHUNKS = ("Hello", ", ", "world", "!")

ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: (
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens.",
    ),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
}


@dataclass
class Scenario:
    """What one request does."""

    text_chunks: list[str] = field(default_factory=lambda: list(DEFAULT_CHUNKS))
    finish_reason: str = "stop"
    # Of prompt_tokens, how many were read from the cache.
    cached_tokens: int = 0
    # A server that never sends the usage chunk, asked or not (older local servers).
    omit_usage: bool = False
    # Close the connection after this many text chunks, before the finish and the usage.
    cut_after: int | None = None
    # Answer with this HTTP error status instead.
    status: int | None = None
    retry_after: str | None = None
    # Tool calls streamed after the text: (id, name, argument pieces).
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    # Seconds between chunks.
    chunk_delay: float = 0.0

    @classmethod
    def error(cls, status: int, retry_after: str | None = None) -> Scenario:
        return cls(status=status, retry_after=retry_after)


@dataclass
class RecordedRequest:
    body: Any
    headers: dict[str, str]

    @property
    def api_key(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


def count_prompt_tokens(body: Any) -> int:
    chars = 0
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars // 4 + 1


def error_body(status: int) -> dict[str, Any]:
    error_type, code, message = ERRORS.get(status, ("server_error", None, "Error"))
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


class FakeOpenAI:
    def __init__(self, accepted_keys: set[str] | None = None) -> None:
        # None accepts any key and none (a keyless local server).
        self.accepted_keys = accepted_keys
        self.requests: list[RecordedRequest] = []
        self.outcomes: list[str] = []
        self._scenarios: deque[Scenario] = deque()

    def enqueue(self, *scenarios: Scenario) -> None:
        self._scenarios.extend(scenarios)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}],
            }
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = RecordedRequest(body, dict(request.headers))
        self.requests.append(recorded)
        if self.accepted_keys is not None and recorded.api_key not in self.accepted_keys:
            return web.json_response(error_body(401), status=401)
        scenario = self._scenarios.popleft() if self._scenarios else Scenario()
        if scenario.status is not None:
            headers = {"retry-after": scenario.retry_after} if scenario.retry_after else {}
            return web.json_response(
                error_body(scenario.status), status=scenario.status, headers=headers
            )
        prompt = count_prompt_tokens(body)
        usage = {
            "prompt_tokens": prompt + scenario.cached_tokens,
            "completion_tokens": len(scenario.text_chunks) + len(scenario.tool_calls),
            "total_tokens": prompt
            + scenario.cached_tokens
            + len(scenario.text_chunks)
            + len(scenario.tool_calls),
            "prompt_tokens_details": {"cached_tokens": scenario.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_fake",
        }
        if not body.get("stream"):
            return web.json_response(self._completion(base, scenario, usage))
        return await self._stream(request, base, scenario, usage, body)

    def _completion(
        self, base: dict[str, Any], scenario: Scenario, usage: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(scenario.text_chunks) or None,
            "refusal": None,
        }
        if scenario.tool_calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": "".join(a)}}
                for i, n, a in scenario.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": scenario.finish_reason,
        }
        result = {**base, "object": "chat.completion", "choices": [choice]}
        if not scenario.omit_usage:
            result["usage"] = usage
        return result

    async def _stream(
        self,
        request: web.Request,
        base: dict[str, Any],
        scenario: Scenario,
        usage: dict[str, Any],
        body: Any,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
            if wants_usage and "usage" not in extra:
                chunk["usage"] = None  # as OpenAI does on every chunk but the last
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        await send(choice({"role": "assistant", "content": "", "refusal": None}))
        for sent, text in enumerate(scenario.text_chunks):
            if scenario.cut_after == sent:
                return self._cut(request)
            if scenario.chunk_delay:
                await asyncio.sleep(scenario.chunk_delay)
            await send(choice({"content": text}))
        if scenario.cut_after == len(scenario.text_chunks):
            return self._cut(request)
        for index, (call_id, name, pieces) in enumerate(scenario.tool_calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            await send(choice({"tool_calls": [head]}))
            for piece in pieces:
                await send(
                    choice({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        await send(choice({}, scenario.finish_reason))
        if wants_usage and not scenario.omit_usage:
            await send([], usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        self.outcomes.append("completed")
        return response

    def _cut(self, request: web.Request) -> web.Response:
        self.outcomes.append("cut")
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never sent: the connection is gone


@contextlib.asynccontextmanager
async def running_fake_openai(
    fake: FakeOpenAI | None = None,
) -> AsyncIterator[tuple[FakeOpenAI, str]]:
    """Serve a fake on 127.0.0.1; yield it and its base URL (ending in /v1)."""
    fake = fake or FakeOpenAI()
    server = TestServer(fake.make_app(), host="127.0.0.1", port=0)
    await server.start_server(shutdown_timeout=2.0)
    try:
        yield fake, str(server.make_url("/v1"))
    finally:
        await server.close()
