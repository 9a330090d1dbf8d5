"""The two bases every message class derives from, and the descriptions many share.

Fields are snake_case in Python and camelCase on the wire. A client message carries its wire
tag as ``type: ClassVar[str]`` and a request ``id``; the tag is what the tagged union
dispatches on, so every class (built-in or a plugin's) can be structured from, and checked
against, the same converter.
"""

from typing import ClassVar

from attrs import field, frozen

from agentspace_gateway.protocol.validators import about, bounded_text

NANOS = "Exact integer nano-dollars (10^-9 USD) of {0}: add these, never the floats."


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
