"""A TCP site whose accept loop goes through the connection gate and backs off when out of
descriptors.

Not ``web.TCPSite``: that one serves through ``loop.create_server``, whose accept loop, on
running out of descriptors, logs a traceback and schedules a retry for every pending
connection in the backlog, not once per wake-up (CPython 3.11's ``_accept_connection`` does
not return after the first failure). The retries multiply: 18,535 tracebacks in 7 s at a
limit of 64 descriptors and 200 sockets, measured. Here an accept failure stops accepting on
that socket for ``ACCEPT_RETRY_SECONDS`` and is logged at most once per interval.
"""

import asyncio
import errno
import logging
import socket

from aiohttp import web
from yarl import URL

from agentspace_gateway.connection_limits import (
    LOG_INTERVAL_SECONDS,
    ConnectionGate,
    GuardedProtocol,
)
from agentspace_gateway.throttled_log import ThrottledWarning

log = logging.getLogger(__name__)

ACCEPT_RETRY_SECONDS = 1.0
# Accepts per wake-up of a listening socket, as asyncio does: a burst is taken in a few
# loop turns, never by starving the connections already open.
ACCEPTS_PER_WAKEUP = 128
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every address ``host`` names."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class GatedListener(asyncio.AbstractServer):
    """The listening sockets of one site, and the accept loop over them."""

    def __init__(self, runner: web.BaseRunner, gate: ConnectionGate, sockets: list[socket.socket]):
        self._loop = asyncio.get_running_loop()
        self._runner = runner
        self._gate = gate
        self._sockets = sockets
        self._retries: dict[socket.socket, asyncio.TimerHandle] = {}
        self._connecting: set[asyncio.Task[None]] = set()
        self._failures = ThrottledWarning(log, LOG_INTERVAL_SECONDS)
        self._serving = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        self._serving = True
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.Event().wait()

    def close(self) -> None:
        self._serving = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        for retry in self._retries.values():
            retry.cancel()
        self._retries.clear()
        self._failures.flush()

    async def wait_closed(self) -> None:
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                self._failed(sock, error)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _failed(self, sock: socket.socket, error: OSError) -> None:
        # Waiting is the only cure for running out: every retry at once would fail the same.
        self._loop.remove_reader(sock.fileno())
        self._retries[sock] = self._loop.call_later(ACCEPT_RETRY_SECONDS, self._resume, sock)
        hint = (
            " (raise the descriptor limit, or lower server.max_connections)"
            if error.errno in OUT_OF_RESOURCES
            else ""
        )
        self._failures(
            f"cannot accept connections: {error.strerror}{hint}; "
            f"{self._gate.open + len(self._connecting)} open; "
            f"accepting again in {ACCEPT_RETRY_SECONDS:g} s"
        )

    def _resume(self, sock: socket.socket) -> None:
        self._retries.pop(sock, None)
        if self._serving:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def _connect(self, conn: socket.socket) -> None:
        server = self._runner.server
        if server is None:  # shutting down
            conn.close()
            return
        protocol = self._gate.protocol_for(server)
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, conn)
        except OSError as error:
            log.debug("connection dropped while being set up: %s", error)
            conn.close()
            if isinstance(protocol, GuardedProtocol):
                protocol.release()


class GatedSite(web.BaseSite):
    """``web.TCPSite``, with its connections admitted by a ``ConnectionGate``."""

    __slots__ = ("_gate", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, gate: ConnectionGate) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._gate = gate

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        listener = GatedListener(
            self._runner, self._gate, listening_sockets(self._host, self._port, self._backlog)
        )
        await listener.start_serving()
        self._server = listener
