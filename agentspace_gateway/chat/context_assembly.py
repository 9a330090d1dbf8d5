"""What a request to the model carries, section by section, with bytes and token estimates.

The same assembly feeds both the request sent upstream and ``context.inspect``, so what the
user inspects is exactly what is sent. History token counts come from the estimates stored
with each message, so a long session is never re-tokenised.
"""

from typing import Any

from attrs import frozen

from agentspace_gateway.storage import MessageRepository, MessageRow
from agentspace_gateway.tokens import TokenEstimator

SECTION_NAMES = ("system_prompt", "history", "memory", "skills", "tools")


@frozen
class Section:
    name: str
    content: str
    byte_count: int
    token_estimate: int


@frozen
class AssembledContext:
    model: str
    system_prompt: str
    # The Anthropic `messages` parameter, exactly as it is sent.
    messages: list[dict[str, Any]]
    sections: list[Section]

    @property
    def estimated_input_tokens(self) -> int:
        return sum(section.token_estimate for section in self.sections)


def _section(name: str, content: str, tokens: int) -> Section:
    return Section(name, content, len(content.encode("utf-8")), tokens)


def _render(messages: list[MessageRow]) -> str:
    return "\n\n".join(f"{message.role}: {message.content}" for message in messages)


class ContextAssembler:
    def __init__(
        self,
        messages: MessageRepository,
        estimator: TokenEstimator,
        *,
        system_prompt: str,
        history_messages: int,
    ) -> None:
        self._messages = messages
        self._estimator = estimator
        self._system_prompt = system_prompt
        self._history_messages = history_messages
        self._system_tokens: int | None = None

    async def assemble(
        self, session_id: str, model: str, *, pending: MessageRow | None = None
    ) -> AssembledContext:
        """The next request for the session; ``pending`` is the stored, not yet sent, message."""
        recent = await self._messages.recent_for_session(
            session_id, limit=self._history_messages + (1 if pending else 0)
        )
        history = [m for m in recent if pending is None or m.id != pending.id]
        history = _sendable(history[-self._history_messages :])
        history_tokens = 0
        for message in history:
            history_tokens += await self._tokens_of(message)
        sections = [
            _section("system_prompt", self._system_prompt, await self._system_prompt_tokens()),
            _section("history", _render(history), history_tokens),
            _section("memory", "", 0),
            _section("skills", "", 0),
            _section("tools", "", 0),
        ]
        outgoing = [*history]
        if pending is not None:
            sections.append(
                _section("user_message", pending.content, await self._tokens_of(pending))
            )
            outgoing.append(pending)
        return AssembledContext(
            model=model,
            system_prompt=self._system_prompt,
            messages=[{"role": m.role, "content": m.content} for m in outgoing],
            sections=sections,
        )

    async def _system_prompt_tokens(self) -> int:
        if self._system_tokens is None:
            self._system_tokens = await self._estimator.count_async(self._system_prompt)
        return self._system_tokens

    async def _tokens_of(self, message: MessageRow) -> int:
        if message.token_estimate is not None:
            return message.token_estimate
        return await self._estimator.count_async(message.content)


def _sendable(history: list[MessageRow]) -> list[MessageRow]:
    # The API wants the conversation to open with the user and has no use for empty turns.
    kept = [m for m in history if m.role in ("user", "assistant") and m.content.strip()]
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept
