"""Built-in message classes. Fields are snake_case here and camelCase on the wire.

A client message carries its wire tag as ``type: ClassVar[str]`` and a request ``id``; the
tag is what the tagged union dispatches on, so every class here (and every plugin's) can be
structured from, and checked against, the same converter.
"""

from typing import Any, ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.validators import (
    bounded_text,
    int_between,
    model_id,
    optional_bounded_text,
    since_timestamp,
    until_timestamp,
)


@frozen(kw_only=True)
class ClientMessage:
    """Base of every inbound message: a tag and the client's request id."""

    type: ClassVar[str]
    id: str = field(validator=bounded_text(128))


@frozen(kw_only=True)
class ServerMessage:
    type: ClassVar[str]


# Client messages ------------------------------------------------------------------------


@frozen(kw_only=True)
class ChatSend(ClientMessage):
    type: ClassVar[str] = "chat.send"
    content: str = field(validator=bounded_text(512 * 1024))
    # A session id, or its full key agent:{agentId}:{id}.
    session_id: str | None = field(default=None, validator=optional_bounded_text(128))
    model: str | None = field(default=None, converter=model_id)


@frozen(kw_only=True)
class ChatCancel(ClientMessage):
    """Stop the reply streaming on this connection (optionally: only if it answers this id)."""

    type: ClassVar[str] = "chat.cancel"
    request_id: str | None = field(default=None, validator=optional_bounded_text(128))


@frozen(kw_only=True)
class ContextInspect(ClientMessage):
    type: ClassVar[str] = "context.inspect"
    session_id: str = field(validator=bounded_text(128))
    # Also ask Anthropic's token-counting endpoint for the exact input size.
    exact: bool = False


@frozen(kw_only=True)
class UsageQuery(ClientMessage):
    type: ClassVar[str] = "usage.query"
    session_id: str | None = field(default=None, validator=optional_bounded_text(128))
    # ISO 8601 times; usage at or after since, and before until.
    since: str | None = field(default=None, converter=since_timestamp)
    until: str | None = field(default=None, converter=until_timestamp)


# The longest page of session.list, as session.history caps its limit: ten requests read
# 10,000 sessions, whose whole list in one reply (1.7 MB) holds the event loop 90-200 ms.
SESSION_PAGE_MAX = 1000


@frozen(kw_only=True)
class SessionList(ClientMessage):
    """Sessions, most recently active first: all of them, or a page of at most ``limit``.

    ``after`` (a session id or key: the previous reply's ``nextAfter``) starts the page just
    past that session.
    """

    type: ClassVar[str] = "session.list"
    limit: int | None = field(default=None, validator=int_between(1, SESSION_PAGE_MAX))
    after: str | None = field(default=None, validator=optional_bounded_text(128))


@frozen(kw_only=True)
class Ping(ClientMessage):
    type: ClassVar[str] = "ping"


@frozen(kw_only=True)
class Auth(ClientMessage):
    """First frame of a browser connection when the gateway requires a token."""

    type: ClassVar[str] = "auth"
    id: str = field(default="auth", validator=bounded_text(128))
    token: str = field(repr=False, validator=bounded_text(512))


# Server messages ------------------------------------------------------------------------


@frozen(kw_only=True)
class Pong(ServerMessage):
    type: ClassVar[str] = "pong"
    request_id: str


@frozen(kw_only=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    # Every token billed: input, output, cache writes and cache reads.
    total_tokens: int


@frozen(kw_only=True)
class Cost:
    """USD. inputCost covers input, cache writes and cache reads."""

    input_cost: float
    output_cost: float
    total_cost: float
    # False when the model's price is unknown: the costs are then 0, not a guess.
    priced: bool


@frozen(kw_only=True)
class ChatStreamStart(ServerMessage):
    type: ClassVar[str] = "chat.stream.start"
    request_id: str
    session_id: str
    model: str


@frozen(kw_only=True)
class ChatStreamDelta(ServerMessage):
    type: ClassVar[str] = "chat.stream.delta"
    request_id: str
    delta: str


@frozen(kw_only=True)
class ChatStreamEnd(ServerMessage):
    type: ClassVar[str] = "chat.stream.end"
    request_id: str
    session_id: str
    usage: TokenUsage
    cost: Cost
    # end_turn, max_tokens, stop_sequence, ... or "cancelled" when the client stopped it.
    stop_reason: str


@frozen(kw_only=True)
class ContextSection:
    name: str
    content: str
    byte_count: int
    token_estimate: int
    cost_estimate: float


@frozen(kw_only=True)
class ContextTotals:
    byte_count: int
    token_estimate: int
    cost_estimate: float


@frozen(kw_only=True)
class ContextInspection(ServerMessage):
    type: ClassVar[str] = "context.inspection"
    request_id: str
    session_id: str
    model: str
    sections: list[ContextSection]
    totals: ContextTotals
    # Measured actual / estimated input tokens over this session's requests, once known.
    estimate_ratio: float | None = None
    exact_input_tokens: int | None = None


@frozen(kw_only=True)
class ModelUsageReport:
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    total_tokens: int
    total_cost: float
    request_count: int
    priced: bool


@frozen(kw_only=True)
class GrandTotal:
    total_cost: float
    total_tokens: int
    request_count: int


@frozen(kw_only=True)
class UsageReport(ServerMessage):
    type: ClassVar[str] = "usage.report"
    request_id: str
    per_model: dict[str, ModelUsageReport]
    grand_total: GrandTotal


@frozen(kw_only=True)
class SessionCreated(ServerMessage):
    type: ClassVar[str] = "session.created"
    session_id: str
    session_key: str


@frozen(kw_only=True)
class SessionSummary:
    session_id: str
    session_key: str
    model: str
    created_at: str
    message_count: int


@frozen(kw_only=True)
class SessionListing(ServerMessage):
    """Sessions, most recently active first. ``nextAfter`` is there only when more follow:
    send it as ``after`` for the next page."""

    type: ClassVar[str] = "session.list"
    request_id: str
    sessions: list[SessionSummary]
    # The id of the last session in this page, when the page stopped at the limit with more
    # sessions after it; absent on the last page and when no limit was asked for.
    next_after: str | None = None


@frozen(kw_only=True)
class FieldProblem:
    field: str
    message: str


@frozen(kw_only=True)
class ErrorMessage(ServerMessage):
    type: ClassVar[str] = "error"
    code: str
    message: str
    request_id: str | None = None
    details: Any = None
    # Upstream failures say whether trying again may work, and when.
    retryable: bool | None = None
    retry_after_ms: int | None = None


@frozen(kw_only=True)
class Authenticated(ServerMessage):
    """Reply to a good ``auth`` frame, so a browser knows it may start."""

    type: ClassVar[str] = "auth.ok"


# session.history ------------------------------------------------------------------------

HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 1000


@frozen(kw_only=True)
class SessionHistory(ClientMessage):
    """The last messages of a session, so a client can show a conversation it rejoins."""

    type: ClassVar[str] = "session.history"
    session_id: str = field(validator=bounded_text(128))
    limit: int = field(default=HISTORY_DEFAULT_LIMIT, validator=int_between(1, HISTORY_MAX_LIMIT))


@frozen(kw_only=True)
class HistoryMessage:
    role: str
    content: str
    created_at: str
    # False for a reply cut short (cancelled, failed, client gone); its partial text is kept.
    complete: bool
    # Output tokens Anthropic reported for a reply; absent for the user's own messages.
    token_count: int | None = None


@frozen(kw_only=True)
class SessionMessages(ServerMessage):
    type: ClassVar[str] = "session.messages"
    request_id: str
    session_id: str
    messages: list[HistoryMessage]


BUILTIN_CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    ChatSend,
    ChatCancel,
    ContextInspect,
    UsageQuery,
    SessionList,
    Ping,
    SessionHistory,
)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    Pong,
    ChatStreamStart,
    ChatStreamDelta,
    ChatStreamEnd,
    ContextInspection,
    UsageReport,
    SessionCreated,
    SessionListing,
    ErrorMessage,
    Authenticated,
    SessionMessages,
)
