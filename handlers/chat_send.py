"""chat.send: resolve or create the session and store the user's message.

The reply from the model arrives with the streaming work; until then the request is
answered NOT_IMPLEMENTED after the message is safely stored.
"""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.protocol.messages import ChatSend, SessionCreated
from agentspace_gateway.storage import SessionRow

from .sessions import find_session


@handles(ChatSend)
async def chat_send(context: ConnectionContext, message: ChatSend) -> None:
    if context.streaming:
        raise GatewayError(
            ErrorCode.STREAM_IN_PROGRESS,
            "A reply is already streaming on this connection; wait for it to end "
            "or open another connection.",
        )
    # Set before the first await, so a second chat.send right behind this one sees it.
    context.streaming = True
    try:
        session = await _session_for(context, message)
        await context.app[appkeys.MESSAGES].add(session.id, "user", message.content)
        raise GatewayError(
            ErrorCode.NOT_IMPLEMENTED,
            "Streamed replies from the model are not implemented yet; your message was stored.",
            {"sessionId": session.id},
        )
    finally:
        context.streaming = False


async def _session_for(context: ConnectionContext, message: ChatSend) -> SessionRow:
    if message.session_id is not None:
        return await find_session(context, message.session_id)
    gateway = context.app[appkeys.CONFIG].gateway
    session = await context.app[appkeys.SESSIONS].create(
        agent_id=gateway.default_agent_id, model=message.model or gateway.default_model
    )
    context.send(SessionCreated(session_id=session.id, session_key=session.session_key))
    return session
