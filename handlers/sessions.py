"""Finding a session named by a client message: by its id or by its full key.

A connection that proved a client key (not the token or the console cookie) finds only the
sessions opened with keys of that client's name; any other is "not found" to it, exactly as
a session that does not exist, so it learns nothing about the owner's or another client's.
"""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError
from agentspace_gateway.storage import SessionRow

KEY_PREFIX = "agent:"


async def find_session(context: ConnectionContext, session_id: str) -> SessionRow:
    sessions = context.app[appkeys.SESSIONS]
    if session_id.startswith(KEY_PREFIX):
        session = await sessions.get_by_key(session_id)
    else:
        session = await sessions.get(session_id)
    if session is None or not await visible(context, session.id):
        raise GatewayError(
            ErrorCode.SESSION_NOT_FOUND,
            f"No session {session_id!r}. Send session.list to see the sessions, or omit "
            "sessionId in chat.send to start a new one.",
            {"sessionId": session_id},
        )
    return session


async def visible(context: ConnectionContext, session_id: str) -> bool:
    client = context.client
    if client is None:
        return True
    origins = await context.app[appkeys.SESSION_ORIGINS].origins_of([session_id])
    origin = origins.get(session_id)
    return origin is not None and origin[0] == client.name
