"""Running the gateway: bind (falling back past busy ports), announce, wait for a signal, stop."""

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import signal
from collections.abc import Callable, Iterator

from aiohttp import web

from agentspace_gateway.access_log import RedactingAccessLogger
from agentspace_gateway.app import create_app
from agentspace_gateway.config import Config
from agentspace_gateway.connection_limits import (
    ConnectionGate,
    derived_max_connections,
    descriptors_needed,
    raise_descriptor_limit,
)
from agentspace_gateway.console_login import announce_console_login
from agentspace_gateway.gated_site import GatedSite
from agentspace_gateway.handler_registry import PluginConflictError
from agentspace_gateway.home import Home
from agentspace_gateway.host_check import is_loopback_name
from agentspace_gateway.runtime_file import remove_runtime, running_gateway, write_runtime
from agentspace_gateway.storage import MigrationError

log = logging.getLogger(__name__)

PORT_TRIES = 10


class ServeError(Exception):
    """Serving cannot start; the message says why and what to do."""


class RemoteBindRefused(ServeError):
    """A non-loopback address without --allow-remote: a usage error, not a failure."""


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    if is_loopback_name(host.strip("[]")) or allow_remote:
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        kind = "a host name that may not be loopback"
    else:
        kind = "a non-loopback address"
    raise RemoteBindRefused(
        f"Refusing to serve on {host}: {kind} would let other machines reach the key server. "
        "Use --host 127.0.0.1, or pass --allow-remote if you mean it."
    )


async def bind_with_fallback(
    runner: web.AppRunner, host: str, port: int, gate: ConnectionGate
) -> int:
    """Start a site on ``port`` or one of the next free ones; return the port taken."""
    tries = 1 if port == 0 else PORT_TRIES
    for candidate in range(port, min(port + tries, 65536)):
        site = GatedSite(runner, host, candidate, gate)
        try:
            await site.start()
        except OSError as error:
            await site.stop()
            if error.errno != errno.EADDRINUSE:
                raise ServeError(f"cannot listen on {host}:{candidate}: {error.strerror}") from None
            log.info("port %d on %s is busy, trying the next one", candidate, host)
            continue
        bound: int = runner.addresses[-1][1]
        return bound
    last = min(port + tries, 65536) - 1
    raise ServeError(f"ports {port} to {last} on {host} are all busy; choose another with --port")


async def serve(config: Config, home: Home, *, announce: Callable[[str], None] = print) -> None:
    home.ensure()
    other = running_gateway(home.runtime_file)
    if other is not None:
        raise ServeError(
            f"a gateway is already running for {home.root} (pid {other.pid}, {other.url}). "
            "Stop it first, or set AGENTSPACE_HOME to another directory."
        )
    check_bind_host(config.server.host, allow_remote=config.server.allow_remote)
    try:
        app = create_app(config=config, home=home)
    except PluginConflictError as error:
        raise ServeError(str(error)) from None
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=config.server.shutdown_timeout_seconds,
        # aiohttp's keep-alive timer starts when a connection opens: a silent one goes too.
        keepalive_timeout=config.server.idle_timeout_seconds,
    )
    with _stop_signals() as stop:
        try:
            await runner.setup()
        except MigrationError as error:
            raise ServeError(str(error)) from None
        try:
            # Once startup has succeeded: a gateway that cannot start says only why.
            gate = connection_gate(config)
            port = await bind_with_fallback(runner, config.server.host, config.server.port, gate)
            if config.server.port not in (0, port):
                announce(f"port {config.server.port} is busy; took port {port} instead")
            frozen = freeze_startup_heap()
            log.info("startup done: %d long-lived objects moved out of the collector's way", frozen)
            info = write_runtime(home.runtime_file, config.server.host, port)
            announce(f"agentspace-gateway serving on {info.url} (home {home.root})")
            announce_console_login(app, config.server.host, port, announce)
            await stop.wait()
            log.info("shutting down: ending running streams, then closing connections")
        finally:
            try:
                await runner.cleanup()
            finally:
                remove_runtime(home.runtime_file)


def connection_gate(config: Config) -> ConnectionGate:
    """Raise the descriptor limit as far as allowed, and size the connection cap to it."""
    before, limit = raise_descriptor_limit()
    configured = config.server.max_connections
    max_connections = configured or derived_max_connections(limit)
    log.info(
        "descriptor limit %s (was %s); up to %d connections (server.max_connections%s)",
        limit,
        before,
        max_connections,
        "" if configured else ", derived from the limit",
    )
    if descriptors_needed(max_connections) > limit:
        log.warning(
            "server.max_connections = %d may need %d descriptors, more than the limit of %d: "
            "past it connections wait, and accepts fail (logged once per interval). Lower "
            "server.max_connections or raise the limit (ulimit -n).",
            max_connections,
            descriptors_needed(max_connections),
            limit,
        )
    return ConnectionGate(
        max_connections=max_connections, header_timeout=config.server.header_timeout_seconds
    )


def freeze_startup_heap() -> int:
    """Leave what startup built out of every later garbage collection; return how many.

    After startup the process holds about 200,000 objects that live as long as it does (the
    SDK's and pydantic's types, the price data), and each full collection walked them all:
    pauses of 100-250 ms with the event loop stopped. Frozen, they are never walked again
    (the longest pause measured 18-22 ms). Garbage is collected first, or it would be frozen
    too and never freed.

    Here and not in an on_startup hook: freezing is a policy for the whole process, which
    only ``serve`` owns. An app built in a process that makes many (the tests, a host
    embedding it) would freeze that process's objects, its garbage-to-be included, each
    time. ``adev runserver`` and ``python -m aiohttp.web`` are for development, where a
    collection pause costs nothing that matters.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """SIGINT and SIGTERM set the event, for the whole run, shutdown included.

    Handled until the very end: a second Ctrl-C (or a supervisor's repeated SIGTERM) would
    otherwise kill the process while it stores the replies it is cutting short, and leave
    runtime.json behind. The shutdown is bounded by server.shutdown_timeout_seconds anyway.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: already shutting down, storing what is streaming", signum.name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
