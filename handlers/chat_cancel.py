"""chat.cancel: stop the reply streaming on this connection.

The stream itself answers, with chat.stream.end and stopReason "cancelled"; the upstream
request is closed and what was streamed so far is kept.
"""

from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.protocol.messages import ChatCancel


@handles(ChatCancel)
async def chat_cancel(context: ConnectionContext, message: ChatCancel) -> None:
    active = context.active_stream
    if active is None or (
        message.request_id is not None and message.request_id != active.request_id
    ):
        which = f" answering {message.request_id!r}" if message.request_id else ""
        raise GatewayError(
            ErrorCode.NO_ACTIVE_STREAM, f"No reply is streaming on this connection{which}."
        )
    active.stop.set()
