"""Anthropic's streamed reply as metering events: the one place its stream is read.

The SDK sends the request and judges its answer's status; the body's Server-Sent Events are
read here with the HTTP doors' scanner (``proxy/sse.py``), not as the SDK's events. Its
``messages.stream()`` helper built a second event object per delta and re-concatenated the
reply so far on each one (it doubled the SDK's CPU per delta); its raw event stream still
decoded the body line by line in Python and built a pydantic model per event, 15-18% of the
gateway's Python time in the latency profile (docs/performance.md, "Chat CPU, fourth pass").
Only the events billing and the relay need are parsed, the JSON of a read's events in one
call. A failure maps as before: the request's status through the SDK's errors, an error
event as the SDK raises it, a broken read as the transport's error (``llm/errors.py``).
"""

import asyncio
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic

from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import TokenCounts
from agentspace_gateway.proxy.sse import SseScanner

# UTF-16 halves, which JSON can carry ("\ud800") but Unicode text cannot hold alone.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
# The longest the stream is read without giving the loop a turn (and the writer a chance to
# send what was read so far).
READ_SLICE_SECONDS = 0.0005
# What the stream is read for; the rest (pings, block starts and stops, message_stop) is
# skipped by name, unparsed.
_WANTED = ("message_start", "content_block_delta", "message_delta", "error")


class SurrogateMender:
    """Upstream text made well-formed before anyone sees it.

    The API sends JSON, in which "\\ud83d\\ude00" is one emoji and a lone "\\ud800" is
    valid but is no character. Python keeps the lone half in the str; the UTF-8 encoders
    downstream then refuse it (SQLite failed the whole exchange on it). So, as JavaScript's
    ``toWellFormed()`` does, each lone half becomes U+FFFD; a pair split over two deltas is
    joined again, the first half held until the next delta says which it was. The client
    and the database therefore get the same text.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._held and not _SURROGATE.search(text):
            return text  # nearly always: one regex scan, no copy
        text, self._held = self._held + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        # The UTF-16 round trip joins the pairs and turns each lone half into U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    def flush(self) -> str:
        """At the end of the reply, a first half no second followed."""
        held, self._held = self._held, ""
        return _REPLACEMENT if held else ""


async def anthropic_events(
    client: AsyncAnthropic, params: Mapping[str, Any]
) -> AsyncGenerator[StreamEvent, None]:
    """Send one Messages request (``params`` as the API takes them) and yield what its
    stream says. An upstream failure, before or during the stream, is the last event
    (``Failed``), never an exception; cancelling the consumer closes the HTTP request."""
    mender = SurrogateMender()
    counts = TokenCounts(0, 0)
    scanner = SseScanner(_WANTED)
    loop = asyncio.get_running_loop()
    due = loop.time() + READ_SLICE_SECONDS
    try:
        # The SDK sends the request and judges its status (a refusal raises its
        # APIStatusError, as before); the events are read from the body here.
        async with client.messages.with_streaming_response.create(
            **params, stream=True
        ) as response:
            async for chunk in response.iter_bytes():
                for event in scanner.feed(chunk):
                    data = event.data
                    if type(data) is not dict:
                        if event.name == "error":
                            raise _stream_error(response.http_response, data)
                        raise ValueError(f"a {event.name} event that is not a JSON object")
                    name = event.name
                    if name == "content_block_delta":
                        delta = data.get("delta")
                        if type(delta) is dict and delta.get("type") == "text_delta":
                            piece = delta.get("text")
                            if type(piece) is not str:
                                raise ValueError("a text delta without its text")
                            text = mender.feed(piece)
                            if text:
                                yield TextStreamed(text)
                                if loop.time() >= due:
                                    # aiohttp hands over a burst it has buffered without
                                    # ever suspending: without a turn of the loop now and
                                    # then, the burst would be read through and relayed as
                                    # one frame at its end. Every delta would cost a frame
                                    # (a system call) if the turn came each time instead.
                                    await asyncio.sleep(0)
                                    due = loop.time() + READ_SLICE_SECONDS
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
                        raise _stream_error(response.http_response, data)
        tail = mender.flush()
        if tail:
            yield TextStreamed(tail)
    except Exception as failure:  # the SDK's errors, and the transport's under it
        yield Failed(upstream_error(failure))


def _stream_error(response: httpx2.Response, body: object) -> anthropic.APIStatusError:
    """An error event in a stream that began well, as the SDK's own event reader raises it
    (its status is the stream's 200: the body's ``error.type`` says what went wrong)."""
    message = f"{body}" if body is not None else "an error event that is not JSON"
    return anthropic.APIStatusError(message, response=response, body=body)
