"""context.inspect and its context.inspection: what a session's next request would carry."""

from typing import ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.message_base import (
    A_SESSION,
    NANOS,
    REQUEST_ID,
    SESSION_ID,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.validators import about, bounded_text


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
    cost_estimate_nanos: int = field(metadata=about(NANOS.format("costEstimate")))


@frozen(kw_only=True)
class ContextTotals:
    """The sections summed, and the whole request's estimated cost."""

    byte_count: int = field(metadata=about("The sections' sizes summed, in UTF-8 bytes."))
    token_estimate: int = field(metadata=about("The sections' token estimates summed."))
    cost_estimate: float = field(
        metadata=about("USD for the whole request, priced as one request.")
    )
    cost_estimate_nanos: int = field(metadata=about(NANOS.format("costEstimate")))


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
    cost_estimate_nanos: int = field(metadata=about(NANOS.format("costEstimate")))


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
