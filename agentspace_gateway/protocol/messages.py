"""Every built-in message class, in one import: the public path plugins and clients use.

The classes live by room (``chat_messages``, ``session_messages``, ``usage_messages``,
``context_messages``, ``connection_messages``, on the bases of ``message_base``); this module
names them all, and ``SERVER_MESSAGES``, the replies the gateway itself sends whichever
handlers are loaded. ``budget_messages`` stands apart: the budget.status handler publishes
its classes as its replies, as a plugin's would be.

They stay in ``protocol/`` rather than beside their handlers in ``handlers/``: the chat
stream, the proxy's inspection, the terminal client and the ``protocol`` command build and
read them without loading any handler, and ``handlers`` (installed as
``agentspace_gateway.handlers``) imports the package, never the reverse.
"""

from agentspace_gateway.protocol.chat_messages import (
    ChatCancel,
    ChatSend,
    ChatStreamDelta,
    ChatStreamEnd,
    ChatStreamStart,
    ChatStreamStatus,
)
from agentspace_gateway.protocol.connection_messages import (
    ERROR_CODE_SCHEMA,
    Auth,
    Authenticated,
    ErrorMessage,
    FieldProblem,
    Ping,
    Pong,
)
from agentspace_gateway.protocol.context_messages import (
    CalibratedEstimate,
    ContextInspect,
    ContextInspection,
    ContextSection,
    ContextTotals,
    EstimateSpread,
)
from agentspace_gateway.protocol.message_base import (
    A_SESSION,
    REQUEST_ID,
    SESSION_ID,
    SESSION_KEY,
    ClientMessage,
    ServerMessage,
)
from agentspace_gateway.protocol.session_messages import (
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    SESSION_PAGE_MAX,
    HistoryMessage,
    SessionCreated,
    SessionHistory,
    SessionList,
    SessionListing,
    SessionMessages,
    SessionOrigin,
    SessionSummary,
)
from agentspace_gateway.protocol.usage_messages import (
    Cost,
    GrandTotal,
    ModelUsageReport,
    TokenUsage,
    UsageGroup,
    UsageQuery,
    UsageReport,
)

__all__ = [
    "A_SESSION",
    "ERROR_CODE_SCHEMA",
    "HISTORY_DEFAULT_LIMIT",
    "HISTORY_MAX_LIMIT",
    "REQUEST_ID",
    "SERVER_MESSAGES",
    "SESSION_ID",
    "SESSION_KEY",
    "SESSION_PAGE_MAX",
    "Auth",
    "Authenticated",
    "CalibratedEstimate",
    "ChatCancel",
    "ChatSend",
    "ChatStreamDelta",
    "ChatStreamEnd",
    "ChatStreamStart",
    "ChatStreamStatus",
    "ClientMessage",
    "ContextInspect",
    "ContextInspection",
    "ContextSection",
    "ContextTotals",
    "Cost",
    "ErrorMessage",
    "EstimateSpread",
    "FieldProblem",
    "GrandTotal",
    "HistoryMessage",
    "ModelUsageReport",
    "Ping",
    "Pong",
    "ServerMessage",
    "SessionCreated",
    "SessionHistory",
    "SessionList",
    "SessionListing",
    "SessionMessages",
    "SessionOrigin",
    "SessionSummary",
    "TokenUsage",
    "UsageGroup",
    "UsageQuery",
    "UsageReport",
]

SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    Pong,
    ChatStreamStart,
    ChatStreamDelta,
    ChatStreamEnd,
    ContextInspection,
    UsageReport,
    SessionCreated,
    SessionListing,
    ErrorMessage,
    Authenticated,
    SessionMessages,
)
