"""Finding a session named by a client message: by its id or by its full key."""

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
    if session is None:
        raise GatewayError(
            ErrorCode.SESSION_NOT_FOUND,
            f"No session {session_id!r}. Send session.list to see the sessions, or omit "
            "sessionId in chat.send to start a new one.",
            {"sessionId": session_id},
        )
    return session
