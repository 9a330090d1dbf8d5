"""session.list: every session with its message count, most recent activity first."""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.protocol.messages import SessionList, SessionListing, SessionSummary


@handles(SessionList)
async def session_list(context: ConnectionContext, message: SessionList) -> None:
    rows = await context.app[appkeys.SESSIONS].list_with_message_counts()
    context.send(
        SessionListing(
            request_id=message.id,
            sessions=[
                SessionSummary(
                    session_id=session.id,
                    session_key=session.session_key,
                    model=session.model,
                    created_at=session.created_at,
                    message_count=count,
                )
                for session, count in rows
            ],
        )
    )
