"""Which session and agents a proxied request is billed to, from the caller's headers.

Claude Code names its session and (sub)agent on every request; another tool may name a
session with ``x-agentspace-session-id``; a request naming none goes to its client's default
session. The ids are the caller's own, kept as given (within a sane length and alphabet).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re

from aiohttp import web
from attrs import frozen

from agentspace_gateway.client_auth.deferred import Deferred
from agentspace_gateway.proxy.errors import invalid_request
from agentspace_gateway.storage.client_keys import ClientKey
from agentspace_gateway.storage.session_origins import OriginSession, SessionOrigins
from agentspace_gateway.storage.usage import Attribution

log = logging.getLogger(__name__)

CLAUDE_CODE_SESSION = "x-claude-code-session-id"
CLAUDE_CODE_AGENT = "x-claude-code-agent-id"
CLAUDE_CODE_PARENT_AGENT = "x-claude-code-parent-agent-id"
AGENTSPACE_SESSION = "x-agentspace-session-id"

_CALLER_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


@frozen
class Attributed:
    session: OriginSession
    attribution: Attribution


class BadCallerId(ValueError):
    pass


def _caller_id(request: web.Request, header: str) -> str | None:
    value = request.headers.get(header)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _CALLER_ID.fullmatch(value):
        raise BadCallerId(
            f"{header}: {value[:40]!r} is not an id (1 to 128 of A-Z a-z 0-9 . _ : @ / + = -)."
        )
    return value


class SessionCache:
    """The session of each (client, caller's session id) once found, so that only a session's
    first request waits for the write that creates it; later ones mark it active in the
    background. Every write is an fsync: awaited on each request it cost 5-10 ms of the
    time to the first byte. Sessions are never deleted, so an entry never goes stale.

    A session's marks are coalesced: while one is queued or being written, the requests that
    come meanwhile owe one more, written after it (its time is read when it runs), not one
    each. At 50 requests starting together in one session that is two writes instead of 50,
    each a trip through the one write queue the usage rows wait in."""

    MAX_ENTRIES = 4096

    def __init__(self, origins: SessionOrigins) -> None:
        self._origins = origins
        self._known: dict[tuple[int, str | None], OriginSession] = {}
        self._touching: set[asyncio.Task[None]] = set()
        # Session id -> whether another mark is owed after the one in progress.
        self._owed: dict[str, bool] = {}

    async def session_for(
        self,
        client: ClientKey,
        external_id: str | None,
        agent_id: str | None,
        model: str,
        later: Deferred | None = None,
    ) -> OriginSession:
        """``later``: the mark of a known session waits there (for the first byte)."""
        key = (client.id, external_id)
        known = self._known.get(key)
        if known is not None:
            if later is None:
                self.touch(known.id)
            else:
                later.add(functools.partial(self.touch, known.id))
            return known
        session = await self._origins.session_for(
            client_key_id=client.id,
            client_name=client.name,
            external_id=external_id,
            agent_id=agent_id,
            model=model,
        )
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.pop(next(iter(self._known)))
        self._known[key] = session
        return session

    def touch(self, session_id: str) -> None:
        """Mark the session active now, in the background."""
        if session_id in self._owed:
            self._owed[session_id] = True
            return
        self._owed[session_id] = False
        task = asyncio.ensure_future(self._touch(session_id))
        self._touching.add(task)
        task.add_done_callback(self._touching.discard)

    async def _touch(self, session_id: str) -> None:
        try:
            while True:
                try:
                    await self._origins.touch(session_id)
                except Exception:
                    log.exception("proxy: session %s could not be marked active", session_id)
                if not self._owed[session_id]:
                    return
                self._owed[session_id] = False
        finally:
            del self._owed[session_id]

    async def flush(self) -> None:
        while self._touching:
            await asyncio.wait(set(self._touching))


async def attribute(
    sessions: SessionCache,
    request: web.Request,
    client: ClientKey,
    model: str,
    later: Deferred | None = None,
) -> Attributed | web.Response:
    try:
        session_id = _caller_id(request, CLAUDE_CODE_SESSION) or _caller_id(
            request, AGENTSPACE_SESSION
        )
        agent = _caller_id(request, CLAUDE_CODE_AGENT)
        parent = _caller_id(request, CLAUDE_CODE_PARENT_AGENT)
    except BadCallerId as error:
        return invalid_request(str(error))
    session = await sessions.session_for(client, session_id, agent, model, later)
    return Attributed(session, Attribution(client.id, agent, parent))
