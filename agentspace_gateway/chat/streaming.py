"""Reading one reply from Anthropic as it streams, keeping everything it reports.

The progress object is filled as events arrive, so whatever happens next (a cancel, a
dropped connection, an error event) the text so far and every token reported are known.
"""

import json
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any, cast

from anthropic import AsyncAnthropic
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
)
from attrs import define, field

from agentspace_gateway.chat.context_assembly import AssembledContext
from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.pricing import TokenCounts

# UTF-16 halves, which JSON can carry ("\ud800") but Unicode text cannot hold alone.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


@define
class StreamProgress:
    parts: list[str] = field(factory=list)
    counts: TokenCounts = field(factory=lambda: TokenCounts(0, 0))
    stop_reason: str | None = None
    upstream_message_id: str | None = None
    started: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def absorb_usage(self, usage: Any) -> None:
        self.counts = merge_usage(self.counts, usage)


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


def delta_frame(request_id: str) -> Callable[[str], str]:
    """The chat.stream.delta frame, built without the converter: it is the hot path.

    ``encode_basestring`` is what ``json.dumps(text, ensure_ascii=False)`` ends in, without
    building an encoder per call: 0.05 us a delta instead of 1 us.
    """
    prefix = '{"type":"chat.stream.delta","requestId":' + json.dumps(request_id) + ',"delta":'
    return lambda text: prefix + encode_basestring(text) + "}"


async def consume(
    client: AsyncAnthropic,
    context: AssembledContext,
    max_tokens: int,
    progress: StreamProgress,
    on_text: Callable[[str], None],
    on_start: Callable[[], None] = lambda: None,
) -> None:
    """Read the reply into ``progress``, each piece of text to ``on_text``; ``on_start`` once
    the message has started (its input-side usage is then in ``progress``)."""
    # The raw event stream, not ``messages.stream()``: that helper builds a second event
    # object per delta and re-concatenates the whole reply so far on each one, which
    # doubled the SDK's CPU per delta (docs/performance.md). Progress keeps what we need.
    stream = await client.messages.create(
        model=context.model,
        max_tokens=max_tokens,
        system=context.system_prompt,
        messages=cast("list[MessageParam]", context.messages),
        stream=True,
    )
    mender = SurrogateMender()

    def take(text: str) -> None:
        if text:
            progress.parts.append(text)
            on_text(text)

    async with stream:
        async for event in stream:
            # The tag too, not only the class: the SDK builds an event (or a delta) of a type
            # it does not know as the first class of its union with every field None, so an
            # unknown event would pass for a message_start with no message.
            if isinstance(event, RawContentBlockDeltaEvent) and event.type == "content_block_delta":
                if isinstance(event.delta, TextDelta) and event.delta.type == "text_delta":
                    take(mender.feed(event.delta.text))
            elif isinstance(event, RawMessageStartEvent) and event.type == "message_start":
                progress.started = True
                progress.upstream_message_id = event.message.id
                progress.absorb_usage(event.message.usage)
                on_start()
            elif isinstance(event, RawMessageDeltaEvent) and event.type == "message_delta":
                progress.stop_reason = event.delta.stop_reason or progress.stop_reason
                progress.absorb_usage(event.usage)
        take(mender.flush())
