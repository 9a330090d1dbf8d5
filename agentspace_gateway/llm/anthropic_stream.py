"""Anthropic's streamed reply as metering events: the one place its stream is read.

The request is sent on the chat's aiohttp session (``AnthropicClients.messages_target``), as
the Anthropic API door sends its own, not through the SDK: the SDK's request building and
sending (its httpx2 client over its aiohttp transport) was 17% of the gateway's Python time
a chat, and the SDK is built without retries here anyway (``llm/retries.py`` decides).
An error answer is judged as the SDK's ``APIStatusError`` for it would be
(``llm/errors.status_error``), so codes, messages and retry-after are as before.

The body's Server-Sent Events are read with the HTTP doors' scanner (``proxy/sse.py``), not
as the SDK's events: its ``messages.stream()`` helper built a second event object per delta
and re-concatenated the reply so far on each one; its raw event stream decoded the body line
by line in Python and built a pydantic model per event (15-18% of the gateway's Python time,
docs/performance.md, "Chat CPU, fourth pass"). Only the events billing and the relay need
are parsed, the JSON of a read's events in one call. An error event maps as the SDK raised
it, a broken read as the transport's error (``llm/errors.py``).
"""

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.llm.client import MessagesTarget
from agentspace_gateway.llm.errors import error_body, status_error, upstream_error
from agentspace_gateway.llm.sse_text import ReadSlices, SurrogateMender
from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import TokenCounts
from agentspace_gateway.protocol.errors import GatewayError
from agentspace_gateway.proxy.sse import SseScanner

# What the stream is read for; the rest (pings, block starts and stops, message_stop) is
# skipped by name, unparsed.
_WANTED = ("message_start", "content_block_delta", "message_delta", "error")


async def anthropic_events(
    target: MessagesTarget, params: Mapping[str, Any]
) -> AsyncGenerator[StreamEvent, None]:
    """Send one Messages request (``params`` as the API takes them) and yield what its
    stream says. An upstream failure, before or during the stream, is the last event
    (``Failed``), never an exception; cancelling the consumer closes the HTTP request."""
    mender = SurrogateMender()
    counts = TokenCounts(0, 0)
    scanner = SseScanner(_WANTED)
    slices = ReadSlices()
    # ASCII JSON: a lone surrogate the client sent stays an escape, as the SDK sent it.
    body = json.dumps({**params, "stream": True}).encode("ascii")
    try:
        async with target.session.post(
            target.url,
            data=body,
            headers=target.headers,
            proxy=target.proxy,
            timeout=target.timeout,
        ) as response:
            if response.status >= 400:
                yield Failed(status_error(response.status, await response.read(), response.headers))
                return
            async for chunk in response.content.iter_any():
                for event in scanner.feed(chunk):
                    data = event.data
                    name = event.name
                    if type(data) is not dict:
                        if name == "error":
                            yield Failed(_stream_error(response.headers, data))
                            return
                        raise ValueError(f"a {name} event that is not a JSON object")
                    if name == "content_block_delta":
                        delta = data.get("delta")
                        if type(delta) is dict and delta.get("type") == "text_delta":
                            piece = delta.get("text")
                            if type(piece) is not str:
                                raise ValueError("a text delta without its text")
                            text = mender.feed(piece)
                            if text:
                                yield TextStreamed(text)
                                if slices.spent():
                                    await slices.give_turn()
                    elif name == "message_start":
                        message = data.get("message")
                        usage = message.get("usage") if type(message) is dict else None
                        counts = merge_usage(counts, usage)
                        yield UsageReported(counts)
                    elif name == "message_delta":
                        delta = data.get("delta")
                        stop = delta.get("stop_reason") if type(delta) is dict else None
                        if stop and type(stop) is str:
                            yield Stopped(stop)
                        counts = merge_usage(counts, data.get("usage"))
                        yield UsageReported(counts)
                    else:  # error
                        yield Failed(_stream_error(response.headers, data))
                        return
        tail = mender.flush()
        if tail:
            yield TextStreamed(tail)
    except Exception as failure:  # the transport's, and an event that could not be read
        yield Failed(upstream_error(failure))


def _stream_error(headers: Mapping[str, str], body: object) -> GatewayError:
    """An error event in a stream that began well, judged as the SDK's event reader raised
    it (its status is the stream's 200: the body's ``error.type`` says what went wrong)."""
    fallback = f"{body}" if body is not None else "an error event that is not JSON"
    return error_body(200, body, headers, fallback)
