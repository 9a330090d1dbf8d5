"""chat.send: stream the model's reply while the user's message is stored, then store the
reply and its cost."""

import nanoid

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.chat.stream import ChatStream
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.messages import (
    ChatSend,
    ChatStreamDelta,
    ChatStreamEnd,
    ChatStreamStart,
    ChatStreamStatus,
    SessionCreated,
)
from agentspace_gateway.storage import NewMessage, SessionRow

from .sessions import find_session


@handles(
    ChatSend,
    replies=[SessionCreated, ChatStreamStart, ChatStreamStatus, ChatStreamDelta, ChatStreamEnd],
)
async def chat_send(context: ConnectionContext, message: ChatSend) -> None:
    services = context.app[CHAT]
    stream = ChatStream(context, services, message.id)
    # Before the first await, so a second chat.send right behind this one sees it.
    services.streams.claim(stream)
    try:
        session = await _session_for(context, message)
        user_message = NewMessage(
            session.id,
            "user",
            message.content,
            token_estimate=await services.estimator.count_async(message.content),
            # The exchange id: ties the message to its reply and usage row.
            request_id=nanoid.generate(),
        )
        await stream.run(
            session=session, model=message.model or session.model, user_message=user_message
        )
    finally:
        services.streams.release(stream)


async def _session_for(context: ConnectionContext, message: ChatSend) -> SessionRow:
    if message.session_id is not None:
        return await find_session(context, message.session_id)
    gateway = context.app[appkeys.CONFIG].gateway
    session = await context.app[appkeys.SESSIONS].create(
        agent_id=gateway.default_agent_id, model=message.model or gateway.default_model
    )
    context.send(SessionCreated(session_id=session.id, session_key=session.session_key))
    return session
