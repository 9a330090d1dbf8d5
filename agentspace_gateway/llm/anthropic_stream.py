"""Anthropic's streamed reply as metering events: the one place its SDK events are read.

The raw event stream, not ``messages.stream()``: that helper builds a second event object
per delta and re-concatenates the whole reply so far on each one, which doubled the SDK's
CPU per delta (docs/performance.md).
"""

import asyncio
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from anthropic import AsyncAnthropic
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
)

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

# UTF-16 halves, which JSON can carry ("\ud800") but Unicode text cannot hold alone.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
# The longest the stream is read without giving the loop a turn (and the writer a chance to
# send what was read so far).
READ_SLICE_SECONDS = 0.0005


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
    loop = asyncio.get_running_loop()
    due = loop.time() + READ_SLICE_SECONDS
    try:
        stream = await client.messages.create(**params, stream=True)
        async with stream:
            async for event in stream:
                # The tag too, not only the class: the SDK builds an event (or a delta) of a
                # type it does not know as the first class of its union with every field
                # None, so an unknown event would pass for a message_start with no message.
                if (
                    isinstance(event, RawContentBlockDeltaEvent)
                    and event.type == "content_block_delta"
                ):
                    delta = event.delta
                    if isinstance(delta, TextDelta) and delta.type == "text_delta":
                        text = mender.feed(delta.text)
                        if text:
                            yield TextStreamed(text)
                            if loop.time() >= due:
                                # aiohttp hands over a burst it has buffered without ever
                                # suspending: without a turn of the loop now and then,
                                # the burst would be read through and relayed as one frame
                                # at its end. Every delta would cost a frame (a system call)
                                # if the turn came each time instead.
                                await asyncio.sleep(0)
                                due = loop.time() + READ_SLICE_SECONDS
                elif isinstance(event, RawMessageStartEvent) and event.type == "message_start":
                    counts = merge_usage(counts, event.message.usage)
                    yield UsageReported(counts)
                elif isinstance(event, RawMessageDeltaEvent) and event.type == "message_delta":
                    if event.delta.stop_reason:
                        yield Stopped(event.delta.stop_reason)
                    counts = merge_usage(counts, event.usage)
                    yield UsageReported(counts)
        tail = mender.flush()
        if tail:
            yield TextStreamed(tail)
    except Exception as failure:  # the SDK's errors, and the transport's under it
        yield Failed(upstream_error(failure))
