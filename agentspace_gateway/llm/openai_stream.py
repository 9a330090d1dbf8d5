"""An OpenAI-compatible chat completions stream as metering events.

One request: ``POST {base_url}/chat/completions`` with ``stream: true`` and always
``stream_options: {include_usage: true}``, since without it OpenAI never reports usage on a
stream. The ``chat.completion.chunk`` events are read as they come: text deltas become
``TextStreamed``, a ``finish_reason`` becomes ``Stopped`` (in the gateway's, Anthropic's,
words), and the final usage chunk becomes ``UsageReported``. OpenAI counts cached input
inside ``prompt_tokens``; the gateway's counts keep them apart (``input_tokens`` excludes
cache reads), so the cached part is taken out of the input and billed as cache reads.

A stream that ends before ``data: [DONE]`` is a failure (``Failed``), never silently a
complete reply; one cut before its usage chunk has reported nothing, and the billed request
bills its estimate (``metering``).
"""

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp

from agentspace_gateway.llm.openai_errors import (
    broken_stream,
    status_error,
    stream_error,
    transport_error,
)
from agentspace_gateway.llm.sse_text import ReadSlices, SurrogateMender
from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import TokenCounts

# OpenAI's finish reasons in the words the gateway (and its ledger) uses for Anthropic's.
FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
DONE = "[DONE]"


def usage_counts(usage: Mapping[str, Any]) -> TokenCounts:
    """OpenAI's usage object as the gateway's counts: cached prompt tokens are cache reads."""
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cached = min(cached, prompt)
    return TokenCounts(
        input_tokens=prompt - cached,
        output_tokens=_count(usage.get("completion_tokens")),
        cache_read_input_tokens=cached,
    )


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


async def sse_data(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, as its lines arrive (comments skipped)."""
    lines: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


async def openai_events(
    session: aiohttp.ClientSession,
    base_url: str,
    key: str | None,
    body: Mapping[str, Any],
    *,
    provider: str,
) -> AsyncGenerator[StreamEvent, None]:
    """Send one streamed chat completion (``body`` as the API takes it, without ``stream``)
    and yield what it says. A failure, before or during the stream, is the last event
    (``Failed``), never an exception; closing the generator closes the HTTP request."""
    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Accept": "text/event-stream"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    mender = SurrogateMender()
    slices = ReadSlices()
    url = f"{base_url}/chat/completions"
    try:
        async with session.post(url, json=payload, headers=headers) as response:
            if response.status >= 400:
                yield Failed(
                    status_error(provider, response.status, await response.read(), response.headers)
                )
                return
            finished = False
            async for data in sse_data(response.content):
                if data == DONE:
                    finished = True
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    raise ValueError(f"a chunk that is not an object: {data[:80]!r}")
                if "error" in chunk:  # some servers report a failure inside the stream
                    yield Failed(stream_error(provider, chunk["error"]))
                    return
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if isinstance(content, str) and content:
                        text = mender.feed(content)
                        if text:
                            yield TextStreamed(text)
                            if slices.spent():
                                await slices.give_turn()
                    reason = choice.get("finish_reason")
                    if isinstance(reason, str) and reason:
                        yield Stopped(FINISH_REASONS.get(reason, reason))
                usage = chunk.get("usage")
                if isinstance(usage, Mapping):
                    yield UsageReported(usage_counts(usage))
            tail = mender.flush()
            if tail:
                yield TextStreamed(tail)
            if not finished:
                yield Failed(broken_stream(provider))
    except Exception as failure:  # the transport's, and a chunk that could not be read
        yield Failed(transport_error(provider, base_url, failure))
