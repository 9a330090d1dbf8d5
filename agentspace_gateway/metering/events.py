"""What an upstream stream says, in words no provider owns.

An adapter per provider (``llm/anthropic_stream.py``) turns its SDK's events into these; the
meter and every door read only these.
"""

from attrs import frozen

from agentspace_gateway.pricing import TokenCounts
from agentspace_gateway.protocol.errors import GatewayError


@frozen
class UsageReported:
    """The request's token counts so far. Cumulative: the latest report replaces the ones
    before it. The first report (Anthropic's message_start) opens the usage row."""

    counts: TokenCounts


@frozen
class TextStreamed:
    text: str


@frozen
class Stopped:
    """The model's own stop reason (``end_turn``, ``max_tokens``...)."""

    reason: str


@frozen
class Failed:
    """The upstream request failed; what came before it still counts."""

    error: GatewayError


@frozen
class Waiting:
    """The request failed before its reply began and is tried again after ``seconds``
    (``llm/retries.py``): not billed, but the client is told (``chat.stream.status``)."""

    seconds: float
    retry: int  # 1 for the first retry
    error: GatewayError  # why: the failure being retried


StreamEvent = UsageReported | TextStreamed | Stopped | Failed | Waiting
