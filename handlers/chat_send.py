"""chat.send: stream the model's reply while the user's message is stored, then store the
reply and its cost."""

import nanoid

from agentspace_gateway import appkeys
from agentspace_gateway.chat.services import ChatServices
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.chat.stream import ChatStream
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.chat_messages import (
    ChatSend,
    ChatStreamDelta,
    ChatStreamEnd,
    ChatStreamStart,
    ChatStreamStatus,
)
from agentspace_gateway.protocol.session_messages import SessionCreated
from agentspace_gateway.storage import MessageRow, NewMessage, SessionRow

from .sessions import KEY_PREFIX, session_not_found, visible_to


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
        ref = message.session_id
        if ref is not None and not ref.startswith(KEY_PREFIX):
            # A session named by its id: the message's write is queued right behind the
            # session's read, both begun before either is waited for.
            user_message = await _user_message(services, ref, message.content)
            client = context.client
            stream.store_early(user_message, client_name=None if client is None else client.name)
            session, recent = await _existing(context, ref)
        else:
            session, recent = await _session_for(context, message)
            user_message = await _user_message(services, session.id, message.content)
        await stream.run(
            session=session,
            model=message.model or session.model,
            user_message=user_message,
            agent_id=message.agent_id,
            recent=recent,
        )
    finally:
        services.streams.release(stream)


async def _user_message(services: ChatServices, session_id: str, content: str) -> NewMessage:
    return NewMessage(
        session_id,
        "user",
        content,
        token_estimate=await services.estimator.count_async(content),
        # The exchange id: ties the message to its reply and usage row.
        request_id=nanoid.generate(),
    )


async def _existing(
    context: ConnectionContext, ref: str
) -> tuple[SessionRow, tuple[MessageRow, ...]]:
    """The session ``ref`` names and its recent messages, in one read (ContextAssembler)."""
    existing = await context.app[CHAT].assembler.open_session(
        ref, by_key=ref.startswith(KEY_PREFIX)
    )
    if existing is None or not visible_to(context, existing.owner):
        raise session_not_found(ref)
    return existing.session, existing.recent


async def _session_for(
    context: ConnectionContext, message: ChatSend
) -> tuple[SessionRow, tuple[MessageRow, ...]]:
    """The session the message goes to and its recent messages (none for a new one)."""
    if message.session_id is not None:
        return await _existing(context, message.session_id)
    gateway = context.app[appkeys.CONFIG].gateway
    model = message.model or gateway.default_model
    client = context.client
    if client is None:
        session = await context.app[appkeys.SESSIONS].create(
            agent_id=gateway.default_agent_id, model=model
        )
    else:
        # A client key's new session is the client's, as one its HTTP requests open is: it
        # lists, reports and bills under the client (the caller's id is this connection's).
        opened = await context.app[appkeys.SESSION_ORIGINS].session_for(
            client_key_id=client.id,
            client_name=client.name,
            external_id=f"ws-{nanoid.generate()}",
            agent_id=None,
            model=model,
        )
        found = await context.app[appkeys.SESSIONS].get(opened.id)
        assert found is not None
        session = found
    context.send(SessionCreated(session_id=session.id, session_key=session.session_key))
    return session, ()
