"""Built-in WebSocket message handlers.

``BUILTIN_HANDLERS`` is the one list of them. The registry loads it exactly as it loads a
third party's entry points (``handler_registry.load_registry``), so every test of a built-in
handler also exercises the extension point, and a checkout that was never installed still
has its handlers.
"""

from agentspace_gateway.handler_registry import BoundHandler

from .budget_status import budget_status
from .chat_cancel import chat_cancel
from .chat_send import chat_send
from .context_inspect import context_inspect
from .ping import ping
from .session_history import session_history
from .session_list import session_list
from .usage_query import usage_query

BUILTIN_HANDLERS: tuple[BoundHandler, ...] = (  # type: ignore[type-arg]
    budget_status,
    chat_cancel,
    chat_send,
    context_inspect,
    ping,
    session_history,
    session_list,
    usage_query,
)
