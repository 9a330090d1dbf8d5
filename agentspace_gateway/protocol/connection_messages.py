"""What any connection exchanges whatever it asks: auth and auth.ok, ping and pong, and the
error reply with its fixed vocabulary."""

from typing import Any, ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.message_base import REQUEST_ID, ClientMessage, ServerMessage
from agentspace_gateway.protocol.usage_messages import Cost, TokenUsage
from agentspace_gateway.protocol.validators import about, bounded_text


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


@frozen(kw_only=True)
class Pong(ServerMessage):
    """The answer to ping."""

    type: ClassVar[str] = "pong"
    request_id: str = field(metadata=about(REQUEST_ID))


@frozen(kw_only=True)
class Authenticated(ServerMessage):
    """Reply to a good ``auth`` frame, so a browser knows it may start."""

    type: ClassVar[str] = "auth.ok"


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
