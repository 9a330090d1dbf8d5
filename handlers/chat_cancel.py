"""chat.cancel: stop the reply streaming on this connection.

The stream itself answers, with chat.stream.end and stopReason "cancelled"; the upstream
request is closed and what was streamed so far is kept.
"""

from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.chat.streams import StopReason
from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.protocol.chat_messages import ChatCancel


@handles(ChatCancel)
async def chat_cancel(context: ConnectionContext, message: ChatCancel) -> None:
    stream = context.app[CHAT].streams.on(context)
    if (
        stream is None
        or not stream.relaying
        or (message.request_id is not None and message.request_id != stream.request_id)
    ):
        which = f" answering {message.request_id!r}" if message.request_id else ""
        raise GatewayError(
            ErrorCode.NO_ACTIVE_STREAM, f"No reply is streaming on this connection{which}."
        )
    stream.stop(StopReason.CANCELLED)
