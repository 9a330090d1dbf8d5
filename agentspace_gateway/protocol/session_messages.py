"""session.list and session.history with their replies, and session.created."""

from typing import ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.message_base import (
    A_SESSION,
    REQUEST_ID,
    SESSION_ID,
    SESSION_KEY,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.validators import (
    about,
    bounded_text,
    int_between,
    optional_bounded_text,
)

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
    limit: int | None = field(
        default=None,
        validator=int_between(1, SESSION_PAGE_MAX),
        metadata=about("At most this many sessions. Left out (or null): every session."),
    )
    after: str | None = field(
        default=None,
        validator=optional_bounded_text(128),
        metadata=about(
            "A session id or key, the previous page's nextAfter: this page starts just past "
            "that session."
        ),
    )


@frozen(kw_only=True)
class SessionCreated(ServerMessage):
    """A chat.send without sessionId started this session; send its id with the next one."""

    type: ClassVar[str] = "session.created"
    session_id: str = field(metadata=about(SESSION_ID))
    session_key: str = field(metadata=about(SESSION_KEY))


@frozen(kw_only=True)
class SessionOrigin:
    """Where a session opened through the Anthropic HTTP API came from."""

    client: str = field(metadata=about("The name of the client key that opened it."))
    agent_id: str | None = field(
        default=None,
        metadata=about("The caller's agent that opened it (Claude Code's x-claude-code-agent-id)."),
    )
    external_id: str | None = field(
        default=None,
        metadata=about("The caller's own id for it (Claude Code's x-claude-code-session-id)."),
    )


@frozen(kw_only=True)
class SessionSummary:
    """One session in a session.list reply."""

    session_id: str = field(metadata=about(SESSION_ID))
    session_key: str = field(metadata=about(SESSION_KEY))
    model: str = field(metadata=about("The model the session was started with."))
    created_at: str = field(metadata=about("When it was created: ISO 8601 UTC, milliseconds."))
    message_count: int = field(metadata=about("Messages stored in it, the user's and replies."))
    origin: SessionOrigin | None = field(
        default=None,
        metadata=about("Present for a session opened through the Anthropic HTTP API."),
    )


@frozen(kw_only=True)
class SessionListing(ServerMessage):
    """Sessions, most recently active first. ``nextAfter`` is there only when more follow:
    send it as ``after`` for the next page."""

    type: ClassVar[str] = "session.list"
    request_id: str = field(metadata=about(REQUEST_ID))
    sessions: list[SessionSummary] = field(metadata=about("The sessions of this page."))
    # The id of the last session in this page, when the page stopped at the limit with more
    # sessions after it; absent on the last page and when no limit was asked for.
    next_after: str | None = field(
        default=None,
        metadata=about(
            "Present only when more sessions follow this page: send it as after for the next."
        ),
    )


HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 1000


@frozen(kw_only=True)
class SessionHistory(ClientMessage):
    """The last messages of a session, so a client can show a conversation it rejoins."""

    type: ClassVar[str] = "session.history"
    session_id: str = field(validator=bounded_text(128), metadata=about(A_SESSION))
    limit: int = field(
        default=HISTORY_DEFAULT_LIMIT,
        validator=int_between(1, HISTORY_MAX_LIMIT),
        metadata=about("How many of the latest messages."),
    )


@frozen(kw_only=True)
class HistoryMessage:
    """One stored message of a session."""

    role: str = field(metadata=about("user or assistant; show a role you do not know as is."))
    content: str = field(metadata=about("The text; for a reply cut short, what had arrived."))
    created_at: str = field(metadata=about("When it was stored: ISO 8601 UTC, milliseconds."))
    # False for a reply cut short (cancelled, failed, client gone); its partial text is kept.
    complete: bool = field(
        metadata=about("False for a reply cancelled, failed part-way, or without its client.")
    )
    # Output tokens Anthropic reported for a reply; absent for the user's own messages.
    token_count: int | None = field(
        default=None,
        metadata=about("For a reply, the output tokens Anthropic reported; absent otherwise."),
    )


@frozen(kw_only=True)
class SessionMessages(ServerMessage):
    """The reply to session.history: the latest messages, oldest first."""

    type: ClassVar[str] = "session.messages"
    request_id: str = field(metadata=about(REQUEST_ID))
    session_id: str = field(metadata=about(SESSION_ID + " Also when the request named its key."))
    messages: list[HistoryMessage] = field(metadata=about("The messages, oldest first."))
