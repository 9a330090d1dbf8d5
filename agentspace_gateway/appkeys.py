"""Typed keys for what every room shares: config, home, storage, vault.

Each room declares its own keys beside its setup (``gateway.keys``, ``chat.setup.CHAT``,
``loop_monitor_setup``), so this module knows no room and no room module needs it to know
them.
"""

from aiohttp import web
from attrs import frozen

from agentspace_gateway.audited_keys import AuditedKeys
from agentspace_gateway.config import Config
from agentspace_gateway.failed_auth import FailedAuthLimiter
from agentspace_gateway.home import Home
from agentspace_gateway.storage import (
    AuditLog,
    Database,
    MessageRepository,
    SessionRepository,
    UsageLedger,
)
from agentspace_gateway.storage.session_origins import SessionOrigins


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
# Sessions opened by HTTP API clients: their origin, and usage by client.
SESSION_ORIGINS = web.AppKey("session_origins", SessionOrigins)
VAULT = web.AppKey("vault", VaultState)
# The keyserver and the gateway both count wrong tokens against the same allowance.
FAILED_AUTH = web.AppKey("failed_auth", FailedAuthLimiter)
