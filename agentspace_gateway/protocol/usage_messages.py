"""usage.query and its usage.report, and the token counts and costs every billed reply
carries (chat.stream.end, an error after billed tokens)."""

from typing import ClassVar, Literal

from attrs import field, frozen

from agentspace_gateway.protocol.message_base import (
    A_SESSION,
    NANOS,
    REQUEST_ID,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.validators import (
    about,
    optional_bounded_text,
    since_timestamp,
    until_timestamp,
)


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
    input_cost_nanos: int = field(metadata=about(NANOS.format("inputCost")))
    output_cost_nanos: int = field(metadata=about(NANOS.format("outputCost")))
    total_cost_nanos: int = field(metadata=about(NANOS.format("totalCost")))
    price_source: str | None = field(
        default=None,
        metadata=about(
            "Where the prices came from: genai-prices, config, or unknown_model (the "
            "configured price for models nobody knows). Left out when not priced."
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
    total_cost_nanos: int = field(metadata=about(NANOS.format("totalCost")))
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
        metadata=about(NANOS.format("totalCost") + " The exact sum of the rows' totalCostNanos.")
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
    total_cost_nanos: int = field(metadata=about(NANOS.format("totalCost")))
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
