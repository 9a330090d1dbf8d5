"""Inline handler plugins for tests, loaded through real EntryPoint objects."""

from typing import ClassVar

from attrs import frozen

from agentspace_gateway.plugin_api import ClientMessage, ConnectionContext, ServerMessage, handles
from agentspace_gateway.protocol.connection_messages import Ping


@frozen(kw_only=True)
class Shout(ClientMessage):
    type: ClassVar[str] = "test.shout"
    text: str
    times: int = 1


@frozen(kw_only=True)
class Shouted(ServerMessage):
    type: ClassVar[str] = "test.shouted"
    request_id: str
    text: str


@handles(Shout, replies=[Shouted])
async def shout(context: ConnectionContext, message: Shout) -> None:
    context.send(Shouted(request_id=message.id, text=message.text.upper() * message.times))


@frozen(kw_only=True)
class Crash(ClientMessage):
    type: ClassVar[str] = "test.crash"


@handles(Crash)
async def crash(context: ConnectionContext, message: Crash) -> None:
    raise RuntimeError("deliberate failure inside a handler")


@frozen(kw_only=True)
class Flood(ClientMessage):
    type: ClassVar[str] = "test.flood"
    count: int
    size: int


@handles(Flood, replies=[Shouted])
async def flood(context: ConnectionContext, message: Flood) -> None:
    payload = "x" * message.size
    for _ in range(message.count):
        context.send(Shouted(request_id=message.id, text=payload))


@handles(Ping)
async def second_ping(context: ConnectionContext, message: Ping) -> None:
    """Claims a type a built-in already owns."""


not_a_handler = object()


@frozen(kw_only=True)
class NotAuth(ClientMessage):
    type: ClassVar[str] = "auth"


@handles(NotAuth)
async def claims_auth(context: ConnectionContext, message: NotAuth) -> None:
    """Tries to take over the gateway's own handshake message."""
