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
        raise session_not_found(session_id)
    return session


def session_not_found(session_id: str) -> GatewayError:
    return GatewayError(
        ErrorCode.SESSION_NOT_FOUND,
        f"No session {session_id!r}. Send session.list to see the sessions, or omit "
        "sessionId in chat.send to start a new one.",
        {"sessionId": session_id},
    )


def visible_to(context: ConnectionContext, owner: str | None) -> bool:
    """Whether a session whose owner (the client that opened it) is ``owner`` is this
    connection's to see."""
    client = context.client
    return client is None or (owner is not None and owner == client.name)


async def visible(context: ConnectionContext, session_id: str) -> bool:
    if context.client is None:
        return True
    origins = await context.app[appkeys.SESSION_ORIGINS].origins_of([session_id])
    origin = origins.get(session_id)
    return visible_to(context, None if origin is None else origin[0])
