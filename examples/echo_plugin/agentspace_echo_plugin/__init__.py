"""An example handler plugin for agentspace-gateway: ``echo`` answers with ``echo.reply``.

Small on purpose, but it shows each part of the contract: a strictly typed message class
with optional fields and a field validator, a declared reply class, and a handler that
raises ``GatewayError`` for a problem only the handler can see.
"""

from typing import Any, ClassVar

import attrs
from attrs import field, frozen

from agentspace_gateway.plugin_api import (
    ClientMessage,
    ConnectionContext,
    ErrorCode,
    FieldValueError,
    GatewayError,
    ServerMessage,
    handles,
)

MAX_TEXT_CHARACTERS = 4096
MAX_TIMES = 10
# text and times are each valid on their own, but together they may ask for far more.
MAX_REPLY_CHARACTERS = 8192


def _text(_: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if not value:
        raise FieldValueError(attribute.name, "must not be empty")
    if len(value) > MAX_TEXT_CHARACTERS:
        raise FieldValueError(attribute.name, f"must be at most {MAX_TEXT_CHARACTERS} characters")


def _times(_: Any, attribute: "attrs.Attribute[Any]", value: int) -> None:
    if not 1 <= value <= MAX_TIMES:
        raise FieldValueError(attribute.name, f"must be from 1 to {MAX_TIMES}")


@frozen(kw_only=True)
class Echo(ClientMessage):
    """Repeat `text` back `times` times (1 to 10), upper-cased if `upper` is true.

    `text` is 1 to 4096 characters long, and the whole reply may be at most 8192.
    """

    type: ClassVar[str] = "echo"
    text: str = field(validator=_text)
    times: int = field(default=1, validator=_times)
    upper: bool = False


@frozen(kw_only=True)
class EchoReply(ServerMessage):
    """The request's text repeated `times` times, joined by single spaces."""

    type: ClassVar[str] = "echo.reply"
    request_id: str
    text: str
    times: int


@handles(Echo, replies=[EchoReply])
async def echo(context: ConnectionContext, message: Echo) -> None:
    text = message.text.upper() if message.upper else message.text
    reply = " ".join([text] * message.times)
    if len(reply) > MAX_REPLY_CHARACTERS:
        raise GatewayError(
            ErrorCode.INVALID_MESSAGE,
            f"The echo would be {len(reply)} characters, over the limit of "
            f"{MAX_REPLY_CHARACTERS}. Send shorter text or a smaller 'times'.",
            [{"field": "times", "message": f"too many for {len(message.text)} characters"}],
        )
    context.send(EchoReply(request_id=message.id, text=reply, times=message.times))


__all__ = ["Echo", "EchoReply", "echo"]
