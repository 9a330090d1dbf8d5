"""Typed keys for everything the application holds; no module globals, no singletons."""

from typing import TYPE_CHECKING

from aiohttp import web
from attrs import frozen

from agentspace_gateway.audited_keys import AuditedKeys
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.storage import (
    AuditLog,
    Database,
    MessageRepository,
    SessionRepository,
    UsageLedger,
)

if TYPE_CHECKING:
    from agentspace_gateway.chat.services import ChatServices

    # The gateway modules read these keys themselves; importing them here would be circular.
    from agentspace_gateway.gateway.connection import ConnectionContext
    from agentspace_gateway.gateway.dispatch import Dispatcher
    from agentspace_gateway.gateway.shutdown import ShutdownSignal
    from agentspace_gateway.gateway.token_holders import TokenHolders
    from agentspace_gateway.handler_registry import HandlerRegistry
    from agentspace_gateway.keyserver.failed_auth import FailedAuthLimiter
    from agentspace_gateway.loop_monitor import LoopMonitor
    from agentspace_gateway.protocol.wire import WireCodec


@frozen
class VaultState:
    """The vault as the running gateway found it: usable, or why not."""

    keys: AuditedKeys | None
    backend: str | None
    problem: str | None

    @property
    def available(self) -> bool:
        return self.keys is not None


CONFIG = web.AppKey("config", Config)
HOME = web.AppKey("home", Home)
STARTED_AT = web.AppKey("started_at", float)
DATABASE = web.AppKey("database", Database)
AUDIT_LOG = web.AppKey("audit_log", AuditLog)
SESSIONS = web.AppKey("sessions", SessionRepository)
MESSAGES = web.AppKey("messages", MessageRepository)
USAGE_LEDGER = web.AppKey("usage_ledger", UsageLedger)
VAULT = web.AppKey("vault", VaultState)
REGISTRY: "web.AppKey[HandlerRegistry]" = web.AppKey("registry")
CODEC: "web.AppKey[WireCodec]" = web.AppKey("codec")
DISPATCHER: "web.AppKey[Dispatcher]" = web.AppKey("dispatcher")
CONNECTIONS: "web.AppKey[set[ConnectionContext]]" = web.AppKey("connections")
CHAT: "web.AppKey[ChatServices]" = web.AppKey("chat")
FAILED_AUTH: "web.AppKey[FailedAuthLimiter]" = web.AppKey("failed_auth")
TOKEN_HOLDERS: "web.AppKey[TokenHolders]" = web.AppKey("token_holders")
SHUTDOWN: "web.AppKey[ShutdownSignal]" = web.AppKey("shutdown")
LOOP_MONITOR: "web.AppKey[LoopMonitor]" = web.AppKey("loop_monitor")
