"""Client keys: ``x-api-key`` or ``Authorization: Bearer`` (both may come), on the HTTP APIs
and on the WebSocket upgrade alike.

Each check reads the key's row afresh (one indexed look-up on a read-only connection of its
own), so a revocation made by the CLI in another process applies from the next request. A
presented key that is wrong counts toward the same limits (per credential prefix, and
overall) as a wrong token on /keys and /gateway, only after the check, so a valid key is
never refused 429; a request with no key at all guesses nothing and is only refused (see
failed_auth.py for why). Every use is in the audit log, and refusals as failed_auth
aggregates them; never the key itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math

from aiohttp import web
from attrs import frozen

from agentspace_gateway.client_auth.audit_events import ClientEvent
from agentspace_gateway.client_auth.deferred import Deferred
from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.failed_auth import FailedAuthLimiter, judge_wrong
from agentspace_gateway.proxy.errors import anthropic_error
from agentspace_gateway.storage import AuditLog
from agentspace_gateway.storage.audit_log import AuditEvent
from agentspace_gateway.storage.client_keys import (
    ClientKey,
    ClientKeyReader,
    ClientKeyRepository,
    looks_like_client_key,
)

log = logging.getLogger(__name__)

HINT = (
    "Send a gateway client key in x-api-key or 'Authorization: Bearer' "
    "(issue one with: agentspace-gateway clients add NAME)."
)


def presented_keys(request: web.Request) -> list[str]:
    """The credentials presented, x-api-key first, without repeats."""
    found = []
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        found.append(api_key)
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and token not in found:
        found.append(token)
    return found


@frozen
class Refused:
    """Why a presented client key was not accepted; each door words the answer its own way."""

    status: int  # 401, or 429 once the limiter says so
    message: str
    retry_after: int | None = None


class ClientAuth:
    def __init__(
        self,
        keys: ClientKeyReader,
        audit_log: AuditLog,
        limiter: FailedAuthLimiter,
        passthrough: PassthroughClient | None = None,
    ) -> None:
        self._keys = keys
        self._audit_log = audit_log
        self._limiter = limiter
        self._passthrough = passthrough
        # Events waiting for the writer, and the writer while it runs.
        self._unwritten: list[AuditEvent] = []
        self._writer: asyncio.Task[None] | None = None

    def is_passthrough(self, client: ClientKey) -> bool:
        """Does this request go upstream with the caller's own credential?"""
        return self._passthrough is not None and self._passthrough.owns(client)

    async def authenticate(
        self, request: web.Request, *, later: Deferred | None = None
    ) -> ClientKey | web.Response:
        """The client key of a request, or the 401/429 response to give it. ``later``: the
        use's audit row waits there (for the caller's first byte) instead of starting now."""
        checked = await self.check(request, presented_keys(request), passthrough=True, later=later)
        if not isinstance(checked, Refused):
            return checked
        if checked.retry_after is not None:
            return anthropic_error(
                checked.status,
                "rate_limit_error",
                checked.message,
                headers={"Retry-After": str(checked.retry_after)},
            )
        return _unauthorized(checked.message)

    async def check(
        self,
        request: web.Request,
        presented: list[str],
        *,
        passthrough: bool = False,
        later: Deferred | None = None,
    ) -> ClientKey | Refused:
        """The client key among ``presented``, or why none is accepted. ``passthrough``: a
        credential that is not a client key may be the caller's own provider key. Refusals
        are audited at once, whatever ``later`` is."""

        def used(detail: str) -> None:
            if later is None:
                self.audit(ClientEvent.USE, request, detail)
            else:
                later.add(functools.partial(self.audit, ClientEvent.USE, request, detail))

        if not presented:
            message = "No client key was presented. "
            return await self._refuse(request, "no client key presented", None, message)
        for secret in presented:
            client = await self._keys.find_by_secret(secret)
            if client is None:
                continue
            if client.revoked_at is not None:
                problem = f"client key of {client.name} was revoked at {client.revoked_at}"
            # The clock is read only for a key that can expire (formatting it was 2% of the
            # gateway's time per proxied request at 50 in flight).
            elif client.expires_at is not None and not client.usable_at(utc_now_iso()):
                problem = f"client key of {client.name} expired at {client.expires_at}"
            else:
                used(f"client {client.name}")
                return client
            return await self._refuse(request, problem, secret, f"The {problem}. ")
        if (
            passthrough
            and self._passthrough is not None
            and not any(map(looks_like_client_key, presented))
        ):
            client = await self._passthrough.client()
            used("the caller's own credential, passed through")
            return client
        unknown = "Invalid client key. "
        return await self._refuse(request, "unknown client key", presented[0], unknown)

    def audit(self, event: ClientEvent, request: web.Request, detail: str) -> None:
        """Record an event without holding up the request it is about.

        Events that come while a write is in progress are written together after it, each
        with the time it happened: 50 requests starting together are a few writes, not 50
        (each a task, a trip to the database thread and a wake-up of the loop, about 70 us
        of CPU a row measured alone)."""
        self._unwritten.append(
            AuditEvent(
                event.value,
                remote_addr=request.remote,
                user_agent=request.headers.get("User-Agent"),
                detail=f"{detail}; {request.method} {request.path}",
            )
        )
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_unwritten())

    async def _write_unwritten(self) -> None:
        try:
            while self._unwritten:
                events, self._unwritten = self._unwritten, []
                try:
                    await self._audit_log.record_all(events)
                except Exception as error:
                    log.error(
                        "%d client key audit rows could not be written: %s", len(events), error
                    )
        finally:
            self._writer = None

    async def flush(self) -> None:
        """Wait for audit rows still being written (at shutdown, and in tests)."""
        while self._writer is not None:
            await asyncio.wait({self._writer})

    async def _refuse(
        self, request: web.Request, problem: str, credential: str | None, message: str
    ) -> Refused:
        """401, or 429 once the limiter says so; audited as the limiter allows."""

        async def record(kind: str, detail: str) -> None:
            if kind == "denied":
                self.audit(ClientEvent.REFUSED, request, detail)
            else:
                await self._audit_log.record(
                    "access.rate_limited",
                    remote_addr=request.remote,
                    user_agent=request.headers.get("User-Agent"),
                    detail=detail,
                )

        wait = await judge_wrong(self._limiter, credential, where="", reason=problem, record=record)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return Refused(
                429,
                f"Too many wrong client keys; try again in {seconds} s, or now with a valid "
                "one (a valid key is never refused).",
                seconds,
            )
        return Refused(401, message + HINT)


class PassthroughClient:
    """The client key row that requests passing their own credential are billed to: a key
    named ``passthrough`` issued on first use, whose secret nobody is ever shown."""

    NAME = "passthrough"

    def __init__(self, keys: ClientKeyRepository) -> None:
        self._keys = keys
        self._client: ClientKey | None = None
        self._lock = asyncio.Lock()

    def owns(self, client: ClientKey) -> bool:
        return self._client is not None and client.id == self._client.id

    async def client(self) -> ClientKey:
        async with self._lock:
            if self._client is None:
                live = [
                    key
                    for key in await self._keys.list_all()
                    if key.name == self.NAME and key.revoked_at is None
                ]
                self._client = live[0] if live else (await self._keys.issue(self.NAME)).client
            return self._client


def _unauthorized(message: str) -> web.Response:
    return anthropic_error(401, "authentication_error", message)
