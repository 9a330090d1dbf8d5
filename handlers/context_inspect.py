"""context.inspect: what the next request to the model would carry, section by section.

Token counting arrives with the streaming work; until then a known session is answered
NOT_IMPLEMENTED and an unknown one SESSION_NOT_FOUND.
"""

from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.protocol.messages import ContextInspect

from .sessions import find_session


@handles(ContextInspect)
async def context_inspect(context: ConnectionContext, message: ContextInspect) -> None:
    session = await find_session(context, message.session_id)
    raise GatewayError(
        ErrorCode.NOT_IMPLEMENTED,
        "Context inspection is not implemented yet.",
        {"sessionId": session.id},
    )
