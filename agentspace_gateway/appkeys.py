"""Typed keys for everything the application holds; no module globals, no singletons."""

from aiohttp import web
from attrs import frozen

from agentspace_gateway.audited_keys import AuditedKeys
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.storage import AuditLog, Database


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
VAULT = web.AppKey("vault", VaultState)
