"""chat.send: stream the model's reply while the user's message is stored, then store the
reply and its cost."""

import nanoid

from agentspace_gateway import appkeys
from agentspace_gateway.chat.exchange import run_exchange
from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.protocol.messages import (
    ChatSend,
    ChatStreamDelta,
    ChatStreamEnd,
    ChatStreamStart,
    SessionCreated,
)
from agentspace_gateway.storage import NewMessage, SessionRow

from .sessions import find_session


@handles(ChatSend, replies=[SessionCreated, ChatStreamStart, ChatStreamDelta, ChatStreamEnd])
async def chat_send(context: ConnectionContext, message: ChatSend) -> None:
    if context.streaming:
        raise GatewayError(
            ErrorCode.STREAM_IN_PROGRESS,
            "A reply is already streaming on this connection; wait for chat.stream.end, "
            "send chat.cancel, or open another connection.",
        )
    # Set before the first await, so a second chat.send right behind this one sees it.
    context.streaming = True
    try:
        services = context.app[appkeys.CHAT]
        session = await _session_for(context, message)
        model = message.model or session.model
        user_message = NewMessage(
            session.id,
            "user",
            message.content,
            token_estimate=await services.estimator.count_async(message.content),
            # The exchange id: ties the message to its reply and usage row.
            request_id=nanoid.generate(),
        )
        await run_exchange(
            context,
            services,
            request_id=message.id,
            session=session,
            model=model,
            user_message=user_message,
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
