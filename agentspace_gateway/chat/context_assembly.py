"""What a request to the model carries, section by section, with bytes and token estimates.

The same assembly feeds both the request sent upstream and ``context.inspect``, so what the
user inspects is exactly what is sent. History token counts come from the estimates stored
with each message, so a long session is never re-tokenised.

A session's history, once rendered, is kept (a bounded number of bytes of it) with the
version of the messages it came from: inspecting a session nobody has written to since
costs one small query, not reading and rendering hundreds of kilobytes again. A chat.send
keeps the rows it read the same way and next reads only the messages stored since (its last
exchange's two): reading and building its whole history (50 rows) each time was about a
third of what the gateway added to the time to the first delta with one stream.
"""

from collections import OrderedDict
from typing import Any

from attrs import frozen

from agentspace_gateway.storage import (
    HistoryVersion,
    MessageRepository,
    MessageRow,
    NewMessage,
    SessionRow,
)
from agentspace_gateway.storage.messages import HistoryRead
from agentspace_gateway.tokens import TokenEstimator

# Rendered histories kept, in bytes of text; the least recently used go first.
DEFAULT_CACHE_BYTES = 16 * 1024 * 1024


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


@frozen
class OpenedSession:
    """A session found for a chat.send, with what its request will need of it."""

    session: SessionRow
    # The name of the client whose key opened the session; None for the owner's own.
    owner: str | None
    # Its last messages as read (one more than the history holds), for ``assemble``.
    recent: tuple[MessageRow, ...]


@frozen
class _History:
    version: HistoryVersion | None  # None: read around a pending message, not kept
    messages: tuple[MessageRow, ...]
    section: Section


def _section(name: str, content: str, tokens: int) -> Section:
    return Section(name, content, len(content.encode("utf-8")), tokens)


class _RecentRows:
    """The last rows read of each session (``limit`` of them at most) and their version;
    bounded in bytes of content, least recently used out first."""

    def __init__(self, limit_bytes: int) -> None:
        self._kept: OrderedDict[str, tuple[HistoryVersion, tuple[MessageRow, ...], int]] = (
            OrderedDict()
        )
        self._limit_bytes = limit_bytes
        self._bytes = 0

    def get(self, session_id: str) -> tuple[HistoryVersion, tuple[MessageRow, ...]] | None:
        kept = self._kept.get(session_id)
        return None if kept is None else kept[:2]

    def update(
        self,
        session_id: str,
        known: tuple[HistoryVersion, tuple[MessageRow, ...]] | None,
        read: HistoryRead,
        limit: int,
    ) -> tuple[MessageRow, ...]:
        """The session's last ``limit`` rows as of ``read`` (made from ``known``, what was
        kept when the read began, when it read only the newer ones), kept for the next."""
        if read.newer_only and known is not None:
            rows = (*known[1], *read.messages)[-limit:]
        else:
            rows = tuple(read.messages)
        previous = self._kept.pop(session_id, None)
        if previous is not None:
            self._bytes -= previous[2]
        size = sum(len(row.content) for row in rows)
        if size <= self._limit_bytes:
            self._kept[session_id] = (read.version, rows, size)
            self._bytes += size
            while self._bytes > self._limit_bytes:
                _, (_, _, evicted) = self._kept.popitem(last=False)
                self._bytes -= evicted
        return rows


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
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._messages = messages
        self._estimator = estimator
        self._system_prompt = system_prompt
        self._history_messages = history_messages
        self._system_tokens: int | None = None
        self._cache: OrderedDict[str, _History] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._recent = _RecentRows(cache_bytes)

    async def open_session(self, ref: str, *, by_key: bool) -> OpenedSession | None:
        """The session ``ref`` names (its id, or its key when ``by_key``), its owner and its
        recent messages, in one read; None when there is no such session. What a chat.send
        needs before its request can go upstream: pass ``recent`` on to ``assemble``."""
        limit = self._history_messages + 1
        known = None if by_key else self._recent.get(ref)
        opening = await self._messages.session_and_recent(
            ref, by_key=by_key, limit=limit, known=None if known is None else known[0]
        )
        if opening is None:
            return None
        session = opening.session
        recent = self._recent.update(session.id, known, opening.history, limit)
        return OpenedSession(session, opening.owner, recent)

    async def assemble(
        self,
        session_id: str,
        model: str,
        *,
        pending: MessageRow | NewMessage | None = None,
        recent: tuple[MessageRow, ...] | None = None,
    ) -> AssembledContext:
        """The next request for the session, ``pending`` last: the message being sent.

        ``pending`` may be stored already (a ``MessageRow``) or still being stored (a
        ``NewMessage`` with its ``request_id``): either way it is left out of the history,
        whether or not the read below already sees it, and goes last, on its own.
        ``recent``: the session's messages as ``open_session`` read them, so that they are
        not read again (only with ``pending``).
        """
        if pending is None:
            history = await self._history(session_id)
        else:
            if recent is None:
                # One more than the history holds: the pending message may be among them.
                limit = self._history_messages + 1
                known = self._recent.get(session_id)
                read = await self._messages.recent_or_newer(
                    session_id, limit=limit, known=None if known is None else known[0]
                )
                recent = self._recent.update(session_id, known, read, limit)
            kept = [m for m in recent if not _is(m, pending)][-self._history_messages :]
            history = await self._render_history(None, kept)
        sections = [
            _section("system_prompt", self._system_prompt, await self._system_prompt_tokens()),
            history.section,
            _section("memory", "", 0),
            _section("skills", "", 0),
            _section("tools", "", 0),
        ]
        outgoing: list[MessageRow | NewMessage] = list(history.messages)
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

    async def _history(self, session_id: str) -> _History:
        cached = self._cache.get(session_id)
        recent = await self._messages.recent_unless_unchanged(
            session_id,
            limit=self._history_messages,
            known=None if cached is None else cached.version,
        )
        if recent.messages is None and cached is not None:
            self._cache.move_to_end(session_id)
            return cached
        assert recent.messages is not None
        history = await self._render_history(recent.version, recent.messages)
        self._remember(session_id, history)
        return history

    async def _render_history(
        self, version: HistoryVersion | None, recent: list[MessageRow]
    ) -> _History:
        messages = _sendable(recent)
        tokens = 0
        for message in messages:
            tokens += await self._tokens_of(message)
        section = _section("history", _render(messages), tokens)
        return _History(version, tuple(messages), section)

    def _remember(self, session_id: str, history: _History) -> None:
        previous = self._cache.pop(session_id, None)
        if previous is not None:
            self._cached_bytes -= previous.section.byte_count
        if history.section.byte_count > self._cache_bytes:
            return
        self._cache[session_id] = history
        self._cached_bytes += history.section.byte_count
        while self._cached_bytes > self._cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= evicted.section.byte_count

    async def _system_prompt_tokens(self) -> int:
        if self._system_tokens is None:
            self._system_tokens = await self._estimator.count_async(self._system_prompt)
        return self._system_tokens

    async def _tokens_of(self, message: MessageRow | NewMessage) -> int:
        if message.token_estimate is not None:
            return message.token_estimate
        return await self._estimator.count_async(message.content)


def _is(stored: MessageRow, pending: MessageRow | NewMessage) -> bool:
    if isinstance(pending, MessageRow):
        return stored.id == pending.id
    if pending.request_id is None:
        raise ValueError("A pending message not yet stored needs its request_id to be found.")
    return stored.request_id == pending.request_id and stored.role == pending.role


def _sendable(history: list[MessageRow]) -> list[MessageRow]:
    # The API wants the conversation to open with the user and has no use for empty turns.
    kept = [m for m in history if m.role in ("user", "assistant") and m.content.strip()]
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept
