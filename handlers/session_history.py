"""session.history: the last messages of a session, oldest first, to show a conversation
that a client rejoins or switches to."""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.session_messages import (
    HistoryMessage,
    SessionHistory,
    SessionMessages,
)

from .sessions import find_session


@handles(SessionHistory, replies=[SessionMessages])
async def session_history(context: ConnectionContext, message: SessionHistory) -> None:
    session = await find_session(context, message.session_id)
    rows = await context.app[appkeys.MESSAGES].recent_for_session(session.id, limit=message.limit)
    context.send(
        SessionMessages(
            request_id=message.id,
            session_id=session.id,
            messages=[
                HistoryMessage(
                    role=row.role,
                    content=row.content,
                    created_at=row.created_at,
                    complete=row.complete,
                    token_count=row.token_count,
                )
                for row in rows
            ],
        )
    )
