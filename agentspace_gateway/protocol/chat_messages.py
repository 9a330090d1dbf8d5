"""chat.send and chat.cancel, and the chat.stream.* replies of a streamed chat."""

from typing import ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.message_base import (
    A_SESSION,
    REQUEST_ID,
    SESSION_ID,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.usage_messages import Cost, TokenUsage
from agentspace_gateway.protocol.validators import (
    about,
    bounded_text,
    caller_agent_id,
    model_id,
    optional_bounded_text,
)


@frozen(kw_only=True)
class ChatSend(ClientMessage):
    """Send a message to the agent and stream its reply: chat.stream.start, deltas, then
    chat.stream.end, or an error."""

    type: ClassVar[str] = "chat.send"
    content: str = field(
        validator=bounded_text(512 * 1024), metadata=about("The message to the agent.")
    )
    session_id: str | None = field(
        default=None,
        validator=optional_bounded_text(128),
        metadata=about(A_SESSION + " Left out (or null), a new session is created."),
    )
    model: str | None = field(
        default=None,
        converter=model_id,
        metadata=about(
            "A model id such as claude-sonnet-4-5 (a dotted version such as 4.5 means 4-5). "
            "For a new session it becomes the session's model; with sessionId it is used for "
            "this request only. Left out (or null): the session's or the gateway's default."
        ),
    )
    agent_id: str | None = field(
        default=None,
        validator=caller_agent_id,
        metadata=about(
            "The caller's agent making this request (as Claude Code's x-claude-code-agent-id "
            "names one): the usage row records it and agent budgets apply. Left out (or "
            "null): none."
        ),
    )


@frozen(kw_only=True)
class ChatCancel(ClientMessage):
    """Stop the reply streaming on this connection (optionally: only if it answers this id)."""

    type: ClassVar[str] = "chat.cancel"
    request_id: str | None = field(
        default=None,
        validator=optional_bounded_text(128),
        metadata=about(
            "The id of the chat.send to stop; the stream is stopped only if it is that "
            "request's. Left out (or null): whichever reply is streaming."
        ),
    )


@frozen(kw_only=True)
class ChatStreamStart(ServerMessage):
    """The message is stored and the request to Anthropic is under way."""

    type: ClassVar[str] = "chat.stream.start"
    request_id: str = field(metadata=about(REQUEST_ID))
    session_id: str = field(metadata=about("The session the reply belongs to: " + SESSION_ID))
    model: str = field(metadata=about("The model this request uses."))
    max_tokens_clipped: int | None = field(
        default=None,
        metadata=about(
            "Present when a budget set to clip lowered the request's max_tokens to fit what it"
            " has left: the max_tokens sent upstream (the reply may stop at max_tokens sooner)."
        ),
    )


@frozen(kw_only=True)
class ChatStreamDelta(ServerMessage):
    """The next piece of the reply's text; join the deltas in order."""

    type: ClassVar[str] = "chat.stream.delta"
    request_id: str = field(metadata=about(REQUEST_ID))
    delta: str = field(metadata=about("The reply's next text."))


@frozen(kw_only=True)
class ChatStreamStatus(ServerMessage):
    """The request failed before its reply began and the gateway waits before trying it
    again; the stream goes on (deltas, then chat.stream.end or an error)."""

    type: ClassVar[str] = "chat.stream.status"
    request_id: str = field(metadata=about(REQUEST_ID))
    waiting_ms: int = field(
        metadata=about(
            "Milliseconds the gateway waits before the retry: the provider's retry-after, "
            "else a backoff; never more than anthropic.max_retry_wait_seconds."
        )
    )
    retry: int = field(metadata=about("Which retry this wait comes before: 1 for the first."))
    reason: str = field(
        metadata=about(
            "The error code of the failure being retried (RATE_LIMITED, UPSTREAM_OVERLOADED, "
            "UPSTREAM_TIMEOUT, LLM_ERROR)."
        )
    )
    message: str = field(metadata=about("The provider's message about that failure."))


@frozen(kw_only=True)
class ChatStreamEnd(ServerMessage):
    """The reply is over, finished or stopped by chat.cancel, with its usage and cost."""

    type: ClassVar[str] = "chat.stream.end"
    request_id: str = field(metadata=about(REQUEST_ID))
    session_id: str = field(metadata=about("The session the reply was stored in."))
    usage: TokenUsage = field(metadata=about("The tokens Anthropic reported."))
    cost: Cost = field(metadata=about("What those tokens cost."))
    # end_turn, max_tokens, stop_sequence, ... or "cancelled" when the client stopped it.
    stop_reason: str = field(
        metadata=about(
            "Anthropic's stop reason (end_turn, max_tokens, stop_sequence, refusal, ...), or "
            "cancelled when chat.cancel stopped it. Treat one you do not know as finished."
        )
    )
