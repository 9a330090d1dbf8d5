"""Anthropic's reply as OpenAI's: a ``chat.completion``, or ``chat.completion.chunk``s as the
Anthropic stream's events arrive (text deltas, tool calls with their argument deltas, the
finish reason, and the usage chunk when the client asked for it).

Usage is reported in OpenAI's terms: ``prompt_tokens`` is every input-side token (cache
reads and writes included), cache reads also in ``prompt_tokens_details.cached_tokens``.
Billing reads Anthropic's own counts, through the metering pipeline.
"""

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from aiohttp import web
from anthropic.types import Message, RawMessageStreamEvent

from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.metering import (
    BilledRequest,
    Failed,
    Stopped,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.openai_api.errors import openai_error
from agentspace_gateway.pricing import TokenCounts

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def openai_usage(counts: TokenCounts) -> dict[str, Any]:
    return {
        "prompt_tokens": counts.total_input,
        "completion_tokens": counts.output_tokens,
        "total_tokens": counts.total,
        "prompt_tokens_details": {"cached_tokens": counts.cache_read_input_tokens},
    }


def error_response(error: Exception) -> web.Response:
    if isinstance(error, anthropic.APIStatusError):
        status = 503 if error.status_code == 529 else error.status_code
        headers = {k: v for k, v in error.response.headers.items() if k.lower() == "retry-after"}
        message = error.message
        return openai_error(status, message, error.type or "api_error", headers=headers)
    gateway = upstream_error(error)
    return openai_error(502, gateway.message, "server_error")


def completion(message: Message, billed: BilledRequest, model: str) -> dict[str, Any]:
    counts = merge_usage(TokenCounts(0, 0), message.usage)
    billed.feed(UsageReported(counts))
    text = "".join(block.text for block in message.content if block.type == "text")
    if text:
        billed.feed(TextStreamed(text))
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": json.dumps(block.input)},
        }
        for block in message.content
        if block.type == "tool_use"
    ]
    if message.stop_reason:
        billed.feed(Stopped(message.stop_reason))
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{message.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(message.stop_reason or "", "stop"),
            }
        ],
        "usage": openai_usage(counts),
    }


async def relay_chunks(
    events: AsyncIterator[RawMessageStreamEvent],
    response: web.StreamResponse,
    billed: BilledRequest,
    model: str,
    *,
    wants_usage: bool,
) -> None:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    async def send(delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk: dict[str, Any] = {**base, "choices": [choice]}
        if wants_usage:
            chunk["usage"] = None
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    counts = TokenCounts(0, 0)
    tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
    finish = "stop"
    await send({"role": "assistant", "content": ""})
    async for event in events:
        if event.type == "message_start":
            counts = merge_usage(counts, event.message.usage)
            billed.feed(UsageReported(counts))
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            tools[event.index] = len(tools)
            call = {
                "index": tools[event.index],
                "id": block.id,
                "type": "function",
                "function": {"name": block.name, "arguments": ""},
            }
            await send({"tool_calls": [call]})
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                billed.feed(TextStreamed(delta.text))
                await send({"content": delta.text})
            elif delta.type == "input_json_delta" and event.index in tools:
                piece = {"index": tools[event.index], "function": {"arguments": delta.partial_json}}
                await send({"tool_calls": [piece]})
        elif event.type == "message_delta":
            counts = merge_usage(counts, event.usage)
            billed.feed(UsageReported(counts))
            if event.delta.stop_reason:
                billed.feed(Stopped(event.delta.stop_reason))
                finish = FINISH_REASONS.get(event.delta.stop_reason, "stop")
    await send({}, finish)
    if wants_usage:
        chunk = {**base, "choices": [], "usage": openai_usage(counts)}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")


def stream_failed(billed: BilledRequest, error: Exception) -> bytes:
    """The error chunk a stream that has begun ends with."""
    gateway = upstream_error(error)
    billed.feed(Failed(gateway))
    body = {
        "error": {"message": gateway.message, "type": "server_error", "param": None, "code": None}
    }
    return f"data: {json.dumps(body)}\n\n".encode()
