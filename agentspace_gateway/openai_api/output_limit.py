"""How much output a chat completion may bring, for its budget reservation.

OpenAI's API takes ``max_completion_tokens`` (and the older ``max_tokens``), each per
choice, with ``n`` choices. A request naming neither has no bound of its own: it is
reserved, and sent, with the gateway's default (``[anthropic] max_tokens``) in the field its
provider knows, as the chat does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from agentspace_gateway.chat.upstreams import OPENAI_URL

FIELDS = ("max_completion_tokens", "max_tokens")


@frozen
class OutputLimit:
    per_choice: int
    choices: int
    # The body's fields that carry the limit (set to what was reserved, per choice).
    fields: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.per_choice * self.choices


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def output_limit(body: Mapping[str, Any], default: int, base_url: str) -> OutputLimit:
    named = {f: _positive_int(body.get(f)) for f in FIELDS if body.get(f) is not None}
    choices = _positive_int(body.get("n")) or 1
    limits = [value for value in named.values() if value is not None]
    if not named:
        field = "max_completion_tokens" if base_url == OPENAI_URL else "max_tokens"
        return OutputLimit(default, choices, (field,))
    # Both named: whichever the provider heeds, the larger bounds it.
    per_choice = max(limits) if limits else default
    return OutputLimit(per_choice, choices, tuple(named))
