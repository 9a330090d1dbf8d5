"""Everything a handler plugin needs, in one import.

A plugin is an installed package with an entry point in the ``agentspace_gateway.handlers``
group naming a handler bound with ``@handles``::

    @frozen(kw_only=True)
    class Echo(ClientMessage):
        type: ClassVar[str] = "echo"
        text: str

    @frozen(kw_only=True)
    class EchoReply(ServerMessage):
        type: ClassVar[str] = "echo.reply"
        request_id: str
        text: str

    @handles(Echo, replies=[EchoReply])
    async def echo(context: ConnectionContext, message: Echo) -> None:
        context.send(EchoReply(request_id=message.id, text=message.text))

Fields are snake_case in Python and camelCase on the wire; an attrs validator that raises
``FieldValueError(field, message)`` is reported to the client against that field. Raise
``GatewayError`` to answer
the request with an ``error`` message; any other exception is logged and answered with
``INTERNAL_ERROR``, and the connection stays open.
"""

from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.handler_registry import ENTRY_POINT_GROUP, BoundHandler, handles
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.message_base import ClientMessage, ServerMessage
from agentspace_gateway.strict_converter import FieldValueError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BoundHandler",
    "ClientMessage",
    "ConnectionContext",
    "ErrorCode",
    "FieldValueError",
    "GatewayError",
    "ServerMessage",
    "handles",
]
