"""session.list: sessions with their message counts, most recent activity first; all of them,
or a page of them with the place the next page starts."""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, GatewayError, handles
from agentspace_gateway.protocol.session_messages import (
    SessionList,
    SessionListing,
    SessionOrigin,
    SessionSummary,
)
from agentspace_gateway.storage import SessionRow

from .sessions import find_session


@handles(SessionList)
async def session_list(context: ConnectionContext, message: SessionList) -> None:
    after = None
    if message.after is not None:
        after = (await _session_named_by_after(context, message.after)).id
    # One row more than the page: whether it comes back says if there is a next page, without
    # a count query over every session.
    fetch = None if message.limit is None else message.limit + 1
    client = None if context.client is None else context.client.name
    rows = await context.app[appkeys.SESSIONS].list_with_message_counts(
        limit=fetch, after=after, client=client
    )
    next_after = None
    if message.limit is not None and len(rows) > message.limit:
        rows = rows[: message.limit]
        next_after = rows[-1][0].id
    origins = await context.app[appkeys.SESSION_ORIGINS].origins_of([row[0].id for row in rows])
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
                    origin=_origin(origins.get(session.id)),
                )
                for session, count in rows
            ],
            next_after=next_after,
        )
    )


def _origin(found: tuple[str, str | None, str | None] | None) -> SessionOrigin | None:
    if found is None:
        return None
    client, agent_id, external_id = found
    return SessionOrigin(client=client, agent_id=agent_id, external_id=external_id)


async def _session_named_by_after(context: ConnectionContext, after: str) -> SessionRow:
    """The session ``after`` names, by id or key. An unknown one is an error, not an empty
    page: sessions are never deleted, so it is a mistake a client should hear about, where an
    empty page would read as "no more sessions"."""
    try:
        return await find_session(context, after)
    except GatewayError as error:
        # find_session's own words speak of chat.send; same code and details, fitting words.
        raise GatewayError(
            error.code,
            f"No session {after!r} to list after. Send session.list without after for the "
            "first page, then each reply's nextAfter as after for the next.",
            error.details,
        ) from None
