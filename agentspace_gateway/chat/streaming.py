"""Reading one reply from Anthropic as it streams, keeping everything it reports.

The progress object is filled as events arrive, so whatever happens next (a cancel, a
dropped connection, an error event) the text so far and every token reported are known.
"""

import json
from collections.abc import Callable
from typing import Any

from anthropic import AsyncAnthropic
from attrs import define, field

from agentspace_gateway.chat.context_assembly import AssembledContext
from agentspace_gateway.pricing import TokenCounts

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


@define
class StreamProgress:
    parts: list[str] = field(factory=list)
    usage: dict[str, int] = field(factory=lambda: dict.fromkeys(_USAGE_FIELDS, 0))
    stop_reason: str | None = None
    upstream_message_id: str | None = None
    started: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def counts(self) -> TokenCounts:
        return TokenCounts(**self.usage)

    def absorb_usage(self, usage: Any) -> None:
        # Each report is cumulative and the latest is authoritative (as the SDK treats it);
        # a field a report leaves out keeps its earlier value.
        for name in _USAGE_FIELDS:
            value = getattr(usage, name, None) if usage is not None else None
            if isinstance(value, int) and value >= 0:
                self.usage[name] = value


def delta_frame(request_id: str) -> Callable[[str], str]:
    """The chat.stream.delta frame, built without the converter: it is the hot path."""
    prefix = '{"type":"chat.stream.delta","requestId":' + json.dumps(request_id) + ',"delta":'
    return lambda text: prefix + json.dumps(text, ensure_ascii=False) + "}"


async def consume(
    client: AsyncAnthropic,
    context: AssembledContext,
    max_tokens: int,
    progress: StreamProgress,
    on_text: Callable[[str], None],
) -> None:
    async with client.messages.stream(
        model=context.model,
        max_tokens=max_tokens,
        system=context.system_prompt,
        messages=context.messages,  # type: ignore[arg-type]
    ) as stream:
        async for event in stream:
            if event.type == "message_start":
                progress.started = True
                progress.upstream_message_id = event.message.id
                progress.absorb_usage(event.message.usage)
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                progress.parts.append(event.delta.text)
                on_text(event.delta.text)
            elif event.type == "message_delta":
                progress.stop_reason = event.delta.stop_reason or progress.stop_reason
                progress.absorb_usage(event.usage)
