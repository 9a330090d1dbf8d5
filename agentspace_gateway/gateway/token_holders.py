"""Connections that proved the bearer token are closed (4401) once the token is rotated,
and those that proved a client key once that key is revoked or expires; the console's
login codes and sessions, given under the token, end with it too (``console_login.py``), and
so do the WebSockets that got in on a console session's cookie.

The token can change in another process (``agentspace-gateway token rotate`` rewrites the
vault), so the gateway has to look. It looks every ``gateway.token_check_seconds`` (1 s),
once for all connections, and only while some connection holds the token or a console code
or session lives: with the file vault an unchanged token costs one ``stat`` in a worker
thread, and with nothing that holds the token the loop costs one wake-up a second. Checking
on every message instead would put that thread hop on the path of every frame and still
miss an idle connection.

A digest of the token is kept per connection, not the token itself; for a client key, its
row id. Revocations are seen in the database (the CLI revokes from another process): one
indexed query per round for all client-key connections.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator

from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.console_login import ConsoleLogin
from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.storage import AuditLog
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.vault import VaultError

log = logging.getLogger(__name__)

TOKEN_ROTATED = 4401


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenHolders:
    def __init__(
        self,
        check_seconds: float,
        keys: AuditedKeys | None,
        audit_log: AuditLog,
        client_keys: ClientKeyRepository | None = None,
        console: ConsoleLogin | None = None,
    ) -> None:
        self.check_seconds = check_seconds
        self._keys = keys
        self._audit_log = audit_log
        self._client_keys = client_keys
        self._console = console
        self._holders: dict[ConnectionContext, bytes] = {}
        self._clients: dict[ConnectionContext, int] = {}
        # Connections that proved the console's cookie: its session ends with the token.
        self._console_holders: set[ConnectionContext] = set()
        self._vault_problem: str | None = None

    def __len__(self) -> int:
        return len(self._holders) + len(self._clients) + len(self._console_holders)

    def add(self, connection: ConnectionContext, token: str) -> None:
        self._holders[connection] = _digest(token)

    def add_client(self, connection: ConnectionContext, client_key_id: int) -> None:
        self._clients[connection] = client_key_id

    def add_console(self, connection: ConnectionContext) -> None:
        """A connection that got in on the console's session cookie (its request's)."""
        self._console_holders.add(connection)

    def discard(self, connection: ConnectionContext) -> None:
        self._holders.pop(connection, None)
        self._clients.pop(connection, None)
        self._console_holders.discard(connection)

    async def check(self) -> int:
        """Close every connection whose token is no longer the vault's, or whose client key
        is no longer usable; how many were."""
        return await self._check_tokens() + await self._check_clients()

    async def _check_clients(self) -> int:
        if self._client_keys is None or not self._clients:
            return 0
        revoked = await self._client_keys.revoked_among(set(self._clients.values()))
        stale = [c for c, key_id in self._clients.items() if key_id in revoked]
        for connection in stale:
            self.discard(connection)
        await asyncio.gather(
            *(self._revoke(connection, "client key was revoked or expired") for connection in stale)
        )
        return len(stale)

    async def _check_tokens(self) -> int:
        keys, console = self._keys, self._console
        if keys is None or not (
            self._holders or self._console_holders or (console is not None and len(console))
        ):
            return 0
        try:
            current = await asyncio.to_thread(keys.vault.get_token)
        except VaultError as error:
            # Unreadable for now (a damaged or re-keyed file): say so once and keep looking.
            # New connections cannot authenticate meanwhile, so nobody new gets in.
            if self._vault_problem != str(error):
                self._vault_problem = str(error)
                log.warning("cannot re-check the gateway token: %s", error)
            return 0
        self._vault_problem = None
        expected = _digest(current) if current is not None else b""
        stale = [
            connection
            for connection, digest in self._holders.items()
            if not hmac.compare_digest(digest, expected)
        ]
        if console is not None:
            console.note_token(current)
            ended = self._console_holders
            stale += [c for c in ended if not console.request_has_session(c.request)]
        for connection in stale:
            self.discard(connection)
        await asyncio.gather(*(self._revoke(connection, "token rotated") for connection in stale))
        return len(stale)

    async def _revoke(self, connection: ConnectionContext, why: str) -> None:
        headers = connection.request.headers
        actor = Actor(connection.peer, headers.get("User-Agent"))
        said = "its token was rotated" if why == "token rotated" else f"its {why}"
        log.info("closing connection %s from %s: %s", connection.id, connection.peer, said)
        await self._audit_log.record(
            AuditEvent.GATEWAY_REVOKED.value,
            remote_addr=actor.remote_addr,
            user_agent=actor.user_agent,
            detail=f"{why}; connection {connection.id} closed",
        )
        reason = (
            "token rotated; reconnect with the new token"
            if why == "token rotated"
            else f"{why}; reconnect with a valid credential"
        )
        await connection.close(TOKEN_ROTATED, reason)

    async def watch(self) -> AsyncIterator[None]:
        """For a cleanup_ctx: look every ``check_seconds`` while the app runs."""
        watcher = asyncio.create_task(self._watch(), name="gateway-token-watch")
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                await self.check()
            except Exception:
                # One bad round (the database busy for the audit row) must not end the watch.
                log.exception("re-checking the gateway token failed; trying again")
