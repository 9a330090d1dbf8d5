"""Where ``context.inspect`` finds what an HTTP API door kept of a session's requests.

The proxy's setup puts its inspector here; the handler reads it without importing the
door, and finds nothing here when the door is not set up.
"""

from typing import Protocol

from aiohttp import web

from agentspace_gateway.protocol.context_messages import ContextInspection


class ProxiedRequestInspector(Protocol):
    async def inspect(self, request_id: str, session_id: str) -> ContextInspection | None:
        """The session's latest kept request, measured; None when none is kept."""
        ...


PROXIED_INSPECTOR = web.AppKey("proxied_inspector", ProxiedRequestInspector)
