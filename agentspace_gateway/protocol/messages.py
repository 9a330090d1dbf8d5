"""Built-in message classes. Fields are snake_case here and camelCase on the wire.

A client message carries its wire tag as ``type: ClassVar[str]`` and a request ``id``; the
tag is what the tagged union dispatches on, so every class here (and every plugin's) can be
structured from, and checked against, the same converter.
"""

from typing import Any, ClassVar, Literal

from attrs import field, frozen

from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.validators import (
    about,
    bounded_text,
    int_between,
    model_id,
    optional_bounded_text,
    since_timestamp,
    until_timestamp,
)

_NANOS = "Exact integer nano-dollars (10^-9 USD) of {0}: add these, never the floats."


@frozen(kw_only=True)
class ClientMessage:
    """Base of every inbound message: a tag and the client's request id."""

    type: ClassVar[str]
    id: str = field(
        validator=bounded_text(128),
        metadata=about(
            "The request id the client chooses; every reply to this request carries it as "
            "requestId."
        ),
    )


@frozen(kw_only=True)
class ServerMessage:
    """Base of every outbound message: a tag, and the fields of its kind."""

    type: ClassVar[str]


# Descriptions of the fields many messages share.
REQUEST_ID = "The id of the request this answers."
SESSION_ID = "The session's id (a 21-character nanoid)."
SESSION_KEY = "The session's full key, agent:{agentId}:{sessionId}."
A_SESSION = "A session id, or its full key agent:{agentId}:{sessionId}."


# Client messages ------------------------------------------------------------------------


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
class ContextInspect(ClientMessage):
    """What the session's next request to the model would carry, section by section, with
    sizes and estimated costs. Answered with context.inspection."""

    type: ClassVar[str] = "context.inspect"
    session_id: str = field(validator=bounded_text(128), metadata=about(A_SESSION))
    exact: bool = field(
        default=False,
        metadata=about(
            "Also ask Anthropic's token-counting endpoint for the exact input size (needs "
            "the API key)."
        ),
    )


@frozen(kw_only=True)
class UsageQuery(ClientMessage):
    """Tokens, cost and request counts per model, for one session or all, over a time
    range. Answered with usage.report."""

    type: ClassVar[str] = "usage.query"
    session_id: str | None = field(
        default=None,
        validator=optional_bounded_text(128),
        metadata=about(A_SESSION + " Left out (or null): every session."),
    )
    # ISO 8601 times; usage at or after since, and before until.
    since: str | None = field(
        default=None,
        converter=since_timestamp,
        metadata=about(
            "Usage recorded at or after this ISO 8601 date or time (UTC when it has no "
            "offset; a date alone is its midnight UTC)."
        ),
    )
    until: str | None = field(
        default=None,
        converter=until_timestamp,
        metadata=about("Usage recorded before this ISO 8601 date or time, read as since is."),
    )
    client: str | None = field(
        default=None,
        validator=optional_bounded_text(64),
        metadata=about(
            "Only requests made through the Anthropic HTTP API with this client key name. "
            "Left out (or null): every request."
        ),
    )
    group_by: Literal["model", "client", "agent", "session"] = field(
        default="model",
        metadata=about(
            "How the reply also sums usage, besides perModel: per client key name, per "
            "caller's agent, or per session, in groups. Left out: model, and no groups."
        ),
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
class Ping(ClientMessage):
    """A liveness check a client can time. Answered with pong."""

    type: ClassVar[str] = "ping"


@frozen(kw_only=True)
class Auth(ClientMessage):
    """First frame of a browser connection when the gateway requires a token."""

    type: ClassVar[str] = "auth"
    id: str = field(
        default="auth", validator=bounded_text(128), metadata=about("A request id; optional.")
    )
    token: str = field(
        repr=False,
        validator=bounded_text(512),
        metadata=about("The gateway's bearer token (agentspace-gateway token show)."),
    )


# Server messages ------------------------------------------------------------------------


@frozen(kw_only=True)
class Pong(ServerMessage):
    """The answer to ping."""

    type: ClassVar[str] = "pong"
    request_id: str = field(metadata=about(REQUEST_ID))


@frozen(kw_only=True)
class TokenUsage:
    """The tokens Anthropic reported for one request."""

    input_tokens: int = field(
        metadata=about("Input tokens not read from or written to the prompt cache.")
    )
    output_tokens: int = field(metadata=about("Tokens generated."))
    cache_creation_input_tokens: int = field(
        metadata=about("Input tokens written to the prompt cache.")
    )
    cache_read_input_tokens: int = field(metadata=about("Input tokens read from the prompt cache."))
    # Every token billed: input, output, cache writes and cache reads.
    total_tokens: int = field(metadata=about("All four counts added up: every token billed."))
    cache_creation_1h_input_tokens: int = field(
        metadata=about(
            "The one-hour part of cacheCreationInputTokens (billed at 2x the input price, "
            "not 1.25x); not added again to totalTokens."
        )
    )
    estimated: bool = field(
        default=False,
        metadata=about(
            "True when outputTokens is the gateway's estimate (cl100k tokens of the text "
            "streamed) of a reply cut off before Anthropic gave its final count: the larger "
            "of that estimate and Anthropic's last figure is billed. Left out when false."
        ),
    )


@frozen(kw_only=True)
class Cost:
    """USD. inputCost covers input, cache writes and cache reads."""

    input_cost: float = field(
        metadata=about("USD for the input side: input tokens, cache writes and cache reads.")
    )
    output_cost: float = field(metadata=about("USD for the output tokens."))
    total_cost: float = field(metadata=about("inputCost + outputCost, in USD."))
    # False when the model's price is unknown: the costs are then 0, not a guess.
    priced: bool = field(
        metadata=about(
            "False when the gateway does not know the model's price: the costs are then 0, "
            "not a guess."
        )
    )
    input_cost_nanos: int = field(metadata=about(_NANOS.format("inputCost")))
    output_cost_nanos: int = field(metadata=about(_NANOS.format("outputCost")))
    total_cost_nanos: int = field(metadata=about(_NANOS.format("totalCost")))
    price_source: str | None = field(
        default=None,
        metadata=about(
            "Where the prices came from: genai-prices, config, or unknown_model (the "
            "configured price for models nobody knows). Left out when not priced."
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


@frozen(kw_only=True)
class ContextSection:
    """One part of the request the model would be sent."""

    name: str = field(
        metadata=about(
            "system_prompt, history, memory, skills or tools; show a name you do not know "
            "as it comes."
        )
    )
    content: str = field(metadata=about("The section's text."))
    byte_count: int = field(metadata=about("Its size in UTF-8 bytes."))
    token_estimate: int = field(metadata=about("Estimated tokens (tiktoken's cl100k_base)."))
    cost_estimate: float = field(
        metadata=about("USD for those tokens at the model's input price; 0 when unknown.")
    )
    cost_estimate_nanos: int = field(metadata=about(_NANOS.format("costEstimate")))


@frozen(kw_only=True)
class ContextTotals:
    """The sections summed, and the whole request's estimated cost."""

    byte_count: int = field(metadata=about("The sections' sizes summed, in UTF-8 bytes."))
    token_estimate: int = field(metadata=about("The sections' token estimates summed."))
    cost_estimate: float = field(
        metadata=about("USD for the whole request, priced as one request.")
    )
    cost_estimate_nanos: int = field(metadata=about(_NANOS.format("costEstimate")))


@frozen(kw_only=True)
class EstimateSpread:
    """Actual / estimated input tokens request by request, over the session's latest
    measured requests (those Anthropic reported input for)."""

    request_count: int = field(metadata=about("Requests measured."))
    min_ratio: float = field(metadata=about("The lowest ratio."))
    p10_ratio: float = field(metadata=about("The 10th percentile (nearest rank)."))
    median_ratio: float = field(metadata=about("The median."))
    p90_ratio: float = field(metadata=about("The 90th percentile (nearest rank)."))
    max_ratio: float = field(metadata=about("The highest ratio."))


@frozen(kw_only=True)
class CalibratedEstimate:
    """The next request's estimate scaled by a measured ratio: an estimate, not a count."""

    basis: str = field(
        metadata=about(
            "session (this session's ratio) or model (the model's, over every session, "
            "while the session has fewer than 3 measured requests)."
        )
    )
    ratio: float = field(metadata=about("The measured actual / estimated ratio applied."))
    request_count: int = field(metadata=about("Requests the ratio was measured over."))
    token_estimate: int = field(metadata=about("The calibrated input token estimate."))
    cost_estimate: float = field(metadata=about("USD for those tokens at the input price."))
    cost_estimate_nanos: int = field(metadata=about(_NANOS.format("costEstimate")))


@frozen(kw_only=True)
class ContextInspection(ServerMessage):
    """The reply to context.inspect: the request the session's next chat.send would make."""

    type: ClassVar[str] = "context.inspection"
    request_id: str = field(metadata=about(REQUEST_ID))
    session_id: str = field(metadata=about(SESSION_ID))
    model: str = field(metadata=about("The session's model, which the estimates are priced at."))
    sections: list[ContextSection] = field(metadata=about("What the request carries, in order."))
    totals: ContextTotals = field(metadata=about("The sections summed."))
    # Measured actual / estimated input tokens over this session's requests, once known.
    estimate_ratio: float | None = field(
        default=None,
        metadata=about(
            "The input tokens Anthropic reported over the gateway's estimates, across this "
            "session's requests; left out until the session has a recorded request."
        ),
    )
    exact_input_tokens: int | None = field(
        default=None,
        metadata=about("Only with exact: Anthropic's own count of the request's input tokens."),
    )
    estimate_spread: EstimateSpread | None = field(
        default=None,
        metadata=about("How estimateRatio varies request by request; left out until it is known."),
    )
    calibrated: CalibratedEstimate | None = field(
        default=None,
        metadata=about(
            "The next request's estimate calibrated by a measured ratio; left out while "
            "nothing is measured."
        ),
    )


@frozen(kw_only=True)
class ModelUsageReport:
    """One model's usage over the requests that matched."""

    input_tokens: int = field(metadata=about("Input tokens outside the prompt cache."))
    output_tokens: int = field(metadata=about("Tokens generated."))
    cache_creation_input_tokens: int = field(metadata=about("Tokens written to the cache."))
    cache_read_input_tokens: int = field(metadata=about("Tokens read from the cache."))
    total_tokens: int = field(metadata=about("All four counts added up."))
    total_cost: float = field(metadata=about("USD, summed exactly before it is written."))
    request_count: int = field(
        metadata=about("Requests that reported usage, cancelled and failed ones included.")
    )
    priced: bool = field(
        metadata=about(
            "False when at least one request had no known price: totalCost then counts only "
            "the priced ones."
        )
    )
    total_cost_nanos: int = field(metadata=about(_NANOS.format("totalCost")))
    cache_creation_1h_input_tokens: int = field(
        metadata=about("The one-hour part of cacheCreationInputTokens.")
    )
    estimated_count: int = field(
        default=0,
        metadata=about(
            "Requests among requestCount whose output is billed on the gateway's estimate: "
            "replies cut off before Anthropic's final count (see TokenUsage.estimated)."
        ),
    )


@frozen(kw_only=True)
class GrandTotal:
    """Every model's usage added up; a floor when a model is not priced."""

    total_cost: float = field(metadata=about("USD over every model."))
    total_tokens: int = field(metadata=about("Tokens over every model."))
    request_count: int = field(metadata=about("Requests over every model."))
    total_cost_nanos: int = field(
        metadata=about(_NANOS.format("totalCost") + " The exact sum of the rows' totalCostNanos.")
    )


@frozen(kw_only=True)
class UsageGroup:
    """One client's, agent's or session's usage over the requests that matched."""

    key: str | None = field(
        metadata=about(
            "The client key's name, the caller's agent id or the session id; null for the "
            "requests without one (made over the WebSocket gateway, or with no agent header)."
        )
    )
    client: str | None = field(
        metadata=about("The client key's name the requests were made with; null: WebSocket.")
    )
    label: str | None = field(
        metadata=about("What to show for the key: a session's key, else the key itself.")
    )
    input_tokens: int = field(metadata=about("Input tokens outside the prompt cache."))
    output_tokens: int = field(metadata=about("Tokens generated."))
    cache_creation_input_tokens: int = field(metadata=about("Tokens written to the cache."))
    cache_read_input_tokens: int = field(metadata=about("Tokens read from the cache."))
    cache_creation_1h_input_tokens: int = field(
        metadata=about("The one-hour part of cacheCreationInputTokens.")
    )
    total_tokens: int = field(metadata=about("All four counts added up."))
    total_cost: float = field(metadata=about("USD, summed exactly before it is written."))
    total_cost_nanos: int = field(metadata=about(_NANOS.format("totalCost")))
    request_count: int = field(
        metadata=about("Requests that reported usage, cancelled and failed ones included.")
    )
    priced: bool = field(
        metadata=about("False when at least one request had no known price: a floor.")
    )
    estimated_count: int = field(
        metadata=about("Requests among requestCount whose output is billed on an estimate.")
    )


@frozen(kw_only=True)
class UsageReport(ServerMessage):
    """The reply to usage.query."""

    type: ClassVar[str] = "usage.report"
    request_id: str = field(metadata=about(REQUEST_ID))
    per_model: dict[str, ModelUsageReport] = field(
        metadata=about("Usage keyed by the model id each request used; {} when none matched.")
    )
    grand_total: GrandTotal = field(metadata=about("Every model added up."))
    group_by: str | None = field(
        default=None, metadata=about("The query's groupBy when it is client, agent or session.")
    )
    groups: list[UsageGroup] | None = field(
        default=None,
        metadata=about(
            "Present when groupBy is client, agent or session: one entry per group, most "
            "expensive first; their totalCostNanos add up to grandTotal's."
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


@frozen(kw_only=True)
class FieldProblem:
    field: str
    message: str


# The built-in vocabulary; a handler plugin may send a code of its own (GatewayError takes
# any string), so the schema names these and still admits another string.
ERROR_CODE_SCHEMA = {
    "anyOf": [
        {"enum": [code.value for code in ErrorCode], "description": "The gateway's own codes."},
        {"type": "string", "description": "A handler plugin's own code."},
    ]
}


@frozen(kw_only=True)
class ErrorMessage(ServerMessage):
    """A request could not be carried out; the connection stays open."""

    type: ClassVar[str] = "error"
    code: str = field(
        metadata=about(
            "What went wrong, from a fixed vocabulary: branch on it. A code you do not know "
            "(a plugin's own) is a failure of that request.",
            **ERROR_CODE_SCHEMA,
        )
    )
    message: str = field(metadata=about("Written for a person; it may change between versions."))
    request_id: str | None = field(
        default=None,
        metadata=about("The request's id, whenever the frame was an object with a readable id."),
    )
    details: Any = field(
        default=None,
        metadata=about(
            "More about the failure, shaped by the code; for INVALID_MESSAGE a list of "
            "{field, message}."
        ),
    )
    # Upstream failures say whether trying again may work, and when.
    retryable: bool | None = field(
        default=None, metadata=about("Whether sending the same request again later may work.")
    )
    retry_after_ms: int | None = field(
        default=None, metadata=about("Milliseconds to wait before retrying, when known.")
    )
    usage: TokenUsage | None = field(
        default=None,
        metadata=about(
            "For a chat.send whose request failed after Anthropic had reported tokens: the "
            "tokens billed for it (they are in the usage ledger too). Left out otherwise."
        ),
    )
    cost: Cost | None = field(
        default=None,
        metadata=about("What those billed tokens cost; present exactly when usage is."),
    )


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
