"""Every key operation, from the CLI or the key server, goes through here and is audit-logged.

The vault is synchronous (scrypt, the OS keychain); its calls run in a worker thread so the
event loop never waits on them. The audit row records who and what, never the key or token.
"""

import asyncio
import getpass
import os
from enum import StrEnum

from attrs import frozen

from agentspace_gateway import __version__
from agentspace_gateway.bearer import token_matches
from agentspace_gateway.storage import AuditLog
from agentspace_gateway.vault import CredentialVault


class AuditEvent(StrEnum):
    KEY_ADD = "key.add"
    KEY_UPDATE = "key.update"
    KEY_REMOVE = "key.remove"
    KEY_ACCESS = "key.access"
    KEY_USE = "key.use"
    KEY_NOT_FOUND = "key.not_found"
    KEY_UNAVAILABLE = "key.unavailable"
    ACCESS_DENIED = "access.denied"
    # One row when an address used up its wrong-token allowance, not one per refused request.
    ACCESS_RATE_LIMITED = "access.rate_limited"
    GATEWAY_REFUSED = "gateway.refused"
    # A WebSocket connection closed because the token it presented was rotated.
    GATEWAY_REVOKED = "gateway.revoked"
    TOKEN_CREATE = "token.create"  # noqa: S105 - an event name, not a secret
    TOKEN_ROTATE = "token.rotate"  # noqa: S105
    TOKEN_SHOW = "token.show"  # noqa: S105


@frozen
class Actor:
    """Who asked: a remote peer of the key server, or a person at the command line."""

    remote_addr: str | None
    user_agent: str | None
    detail: str | None = None

    @classmethod
    def command_line(cls) -> "Actor":
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid {os.getuid()}"
        return cls(None, f"agentspace-gateway-cli/{__version__}", f"local user {user}")


class AuditedKeys:
    def __init__(self, vault: CredentialVault, audit_log: AuditLog) -> None:
        self.vault = vault
        self.audit_log = audit_log

    async def record(
        self,
        event: AuditEvent,
        actor: Actor,
        *,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        await self.audit_log.record(
            event.value,
            provider=provider,
            remote_addr=actor.remote_addr,
            user_agent=actor.user_agent,
            detail=_join(actor.detail, detail),
        )

    async def add(self, provider: str, key: str, actor: Actor) -> None:
        await asyncio.to_thread(self.vault.add_key, provider, key)
        await self.record(AuditEvent.KEY_ADD, actor, provider=provider)

    async def update(self, provider: str, key: str, actor: Actor) -> None:
        await asyncio.to_thread(self.vault.update_key, provider, key)
        await self.record(AuditEvent.KEY_UPDATE, actor, provider=provider)

    async def remove(self, provider: str, actor: Actor) -> None:
        await asyncio.to_thread(self.vault.remove_key, provider)
        await self.record(AuditEvent.KEY_REMOVE, actor, provider=provider)

    async def access(self, provider: str, actor: Actor) -> str | None:
        key = await asyncio.to_thread(self.vault.get_key, provider)
        event = AuditEvent.KEY_ACCESS if key is not None else AuditEvent.KEY_NOT_FOUND
        await self.record(event, actor, provider=provider)
        return key

    async def token_is_valid(self, presented: str) -> bool:
        """Does ``presented`` match the bearer token? Read fresh, so rotation applies at once."""
        expected = await asyncio.to_thread(self.vault.get_token)
        return expected is not None and token_matches(presented, expected)

    async def ensure_token(self, actor: Actor) -> str:
        token, created = await asyncio.to_thread(self.vault.ensure_token)
        if created:
            await self.record(AuditEvent.TOKEN_CREATE, actor)
        return token

    async def show_token(self, actor: Actor) -> str:
        token = await self.ensure_token(actor)
        await self.record(AuditEvent.TOKEN_SHOW, actor)
        return token

    async def rotate_token(self, actor: Actor) -> str:
        token = await asyncio.to_thread(self.vault.rotate_token)
        await self.record(AuditEvent.TOKEN_ROTATE, actor)
        return token


def _join(*parts: str | None) -> str | None:
    kept = [part for part in parts if part]
    return "; ".join(kept) if kept else None
