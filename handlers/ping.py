"""ping -> pong: a liveness check a client can time."""

from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.connection_messages import Ping, Pong


@handles(Ping)
async def ping(context: ConnectionContext, message: Ping) -> None:
    context.send(Pong(request_id=message.id))
