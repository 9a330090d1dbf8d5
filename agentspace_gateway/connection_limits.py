"""Bounded connections: how many may be open, how long a request's headers may take.

aiohttp has neither a connection cap nor a header deadline, and at the common limit of
1,024 descriptors about 1,000 idle sockets made ``/health`` and new WebSockets time out;
3,000 connections sending partial headers were held for 115 s. Here every accepted
connection passes the ``ConnectionGate``:

- under ``server.max_connections`` it is served, wrapped in a ``GuardedProtocol`` that
  closes it if a request's headers have not all arrived ``header_timeout`` seconds after
  its first byte (or after the connection opened, for the first request);
- past the cap, a few more (``HEALTH_SLOTS``) are kept for ``/health`` alone, so a
  supervisor can still tell the gateway lives; any other path there is refused. When they
  are all taken, the one that has waited longest without sending a request is closed to
  make room: a neighbour's idle sockets cannot hold them, a probe's request is read at once;
- when every kept slot has a request under way, the connection gets an immediate 503 with
  ``Connection: close``.

Idle connections are aiohttp's own ``keepalive_timeout``, set to ``idle_timeout`` by
``serve``: its timer starts when a connection opens, so a silent one is closed too.
"""

import asyncio
import json
import logging
import resource
from collections.abc import Callable

from aiohttp import web

from agentspace_gateway.http_errors import Handler
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

# Kept beside the cap for GET /health, so a full gateway still says it is alive.
HEALTH_SLOTS = 4
# Refusals waiting for the client to read its 503 before the socket closes; past these, a
# refusal is written and closed at once (a client whose request is unread may see a reset).
LINGERING_REFUSALS = 16
REFUSAL_LINGER_SECONDS = 1.0
# What the process holds whatever its connections: the database and its WAL and shared
# memory, the log, the event loop's selector and self-pipe, listening sockets, plugin files.
FIXED_DESCRIPTORS = 64
# The derived default stops here: past some thousands of idle connections the memory they
# hold matters more than another client served, on a gateway meant for one machine.
DERIVED_CAP_CEILING = 4096
LOG_INTERVAL_SECONDS = 10.0


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft descriptor limit to the hard one; return (before, after).

    Many systems start processes with a soft limit of 1,024 and a far higher hard one: the
    soft limit is what bounds the gateway, and any process may raise it to the hard one.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and soft >= hard):
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        # macOS reports an infinite hard limit but refuses more than OPEN_MAX.
        return soft, soft
    return soft, hard


def derived_max_connections(descriptor_limit: int) -> int:
    """Half of what the fixed needs and the reserved slots leave: each client connection
    may hold one upstream connection (a chat, a proxied request) open beside it."""
    if descriptor_limit == resource.RLIM_INFINITY:
        return DERIVED_CAP_CEILING
    spare = descriptor_limit - FIXED_DESCRIPTORS - HEALTH_SLOTS - LINGERING_REFUSALS
    return max(1, min(DERIVED_CAP_CEILING, spare // 2))


def descriptors_needed(max_connections: int) -> int:
    return 2 * max_connections + FIXED_DESCRIPTORS + HEALTH_SLOTS + LINGERING_REFUSALS


class ConnectionGate:
    """Admits each accepted connection as served, kept for /health, or refused."""

    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.lingering = 0
        # Connections on a kept slot with no request yet, oldest first (a dict keeps order).
        self.waiting_for_health: dict[GuardedProtocol, None] = {}
        self._refused_log = ThrottledWarning(log, LOG_INTERVAL_SECONDS)
        self._timeout_log = ThrottledWarning(log, LOG_INTERVAL_SECONDS)
        message = (
            f"The gateway has {max_connections} connections open, its limit "
            "(server.max_connections). Try again when one closes."
        )
        error = {"code": ErrorCode.TOO_MANY_CONNECTIONS.value, "message": message}
        self.refusal_body = json.dumps({"error": error}).encode()
        self.refusal = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\n"
            b"Retry-After: 1\r\nConnection: close\r\n\r\n" % len(self.refusal_body)
        ) + self.refusal_body

    def protocol_for(self, make_handler: Callable[[], asyncio.BaseProtocol]) -> asyncio.Protocol:
        """The protocol for a connection just accepted: served, kept for /health, or refused."""
        if self.open < self.max_connections + HEALTH_SLOTS:
            health_only = self.open >= self.max_connections
            return GuardedProtocol(self, make_handler(), health_only=health_only)
        self._refused_log(
            f"refused a connection: {self.open} open, the limit is server.max_connections "
            f"= {self.max_connections} (+{HEALTH_SLOTS} kept for /health)"
        )
        if self.waiting_for_health:
            oldest = next(iter(self.waiting_for_health))
            oldest.evict()
            return GuardedProtocol(self, make_handler(), health_only=True)
        return _Refusal(self)

    def header_timed_out(self, peer: object) -> None:
        self._timeout_log(
            f"closed a connection from {peer}: no complete request headers within "
            f"server.header_timeout_seconds = {self.header_timeout:g}"
        )


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a deadline on each request's headers."""

    def __init__(
        self, gate: ConnectionGate, inner: asyncio.BaseProtocol, *, health_only: bool
    ) -> None:
        self.gate = gate
        self.health_only = health_only
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False
        self._counted = True
        gate.open += 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._arm_deadline()
        if self.health_only:
            self.gate.waiting_for_health[self] = None
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_request and self._deadline is None:
            self._arm_deadline()
        self._inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()  # type: ignore[attr-defined]
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.release()
        self._inner.connection_lost(exc)

    def release(self) -> None:
        """Give back the connection's place under the cap (once, however often called)."""
        self.gate.waiting_for_health.pop(self, None)
        if self._counted:
            self._counted = False
            self.gate.open -= 1

    def evict(self) -> None:
        """Close a connection holding a kept slot without using it, for one that may."""
        self.gate.waiting_for_health.pop(self, None)
        if self._transport is not None:
            self._transport.write(self.gate.refusal)
            self._transport.close()

    def request_started(self) -> None:
        self._in_request = True
        self.gate.waiting_for_health.pop(self, None)
        self._disarm()

    def request_finished(self) -> None:
        self._in_request = False

    def _arm_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.gate.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._transport is None or self._in_request:
            return
        self.gate.header_timed_out(self._transport.get_extra_info("peername"))
        self._transport.close()


class _Refusal(asyncio.Protocol):
    """Writes the 503, then waits (briefly) for the client to finish before closing.

    Closing with the client's request unread would reset the connection, and a reset may
    reach the client before the answer it explains.
    """

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._linger = gate.lingering < LINGERING_REFUSALS
        self._timer: asyncio.TimerHandle | None = None
        if self._linger:
            gate.lingering += 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._gate.refusal)
        if not self._linger:
            transport.close()
            return
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER_SECONDS, transport.abort)

    def data_received(self, data: bytes) -> None:
        """The request is read only to be dropped."""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._linger:
            self._linger = False
            self._gate.lingering -= 1


def _guard_of(request: web.Request) -> GuardedProtocol | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, GuardedProtocol) else None


@web.middleware
async def connection_phase_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tells the connection's guard a request is under way (no header deadline then), and
    answers only /health on a connection admitted past the cap.

    A no-op on connections that did not come through a gate (tests' servers, dev servers).
    """
    guard = _guard_of(request)
    if guard is None:
        return await handler(request)
    if guard.health_only and request.path != "/health":
        refused = web.Response(
            status=503,
            body=guard.gate.refusal_body,
            content_type="application/json",
            headers={"Retry-After": "1"},
        )
        refused.force_close()
        return refused
    guard.request_started()
    try:
        response = await handler(request)
    finally:
        guard.request_finished()
    if guard.health_only:
        response.force_close()
    return response
