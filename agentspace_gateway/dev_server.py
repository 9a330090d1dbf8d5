"""The app under a development server (``adev runserver``, ``python -m aiohttp.web``).

Those servers call ``create_app`` and bind the sockets themselves, so ``serve``'s work is
done here instead: the gateway's logging replaces theirs (``python -m aiohttp.web`` sets the
root logger to DEBUG, where aiosqlite logs every SQL parameter, prompts included), and
runtime.json names the address they actually listen on, so ``agentspace-gateway chat``
finds the gateway.

No server tells the app where it listens: sockets are bound after ``on_startup``, by a
runner the app never sees. So the listening sockets this process opens after startup are
read from the operating system's table of open descriptors, and the first is written down.
"""

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.runtime_file import remove_runtime, running_gateway, write_runtime

log = logging.getLogger(__name__)

# Where a process lists its own open descriptors (Linux, then macOS and the BSDs).
_DESCRIPTOR_DIRS = (Path("/proc/self/fd"), Path("/dev/fd"))
# The server binds within moments of on_startup; a minute covers a loaded machine.
_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.05

Address = tuple[str, int]


def listening_addresses() -> dict[int, Address]:
    """descriptor -> (host, port) of every listening TCP socket this process holds."""
    directory = next((d for d in _DESCRIPTOR_DIRS if d.is_dir()), None)
    if directory is None:
        return {}
    found: dict[int, Address] = {}
    for entry in directory.iterdir():
        with contextlib.suppress(ValueError, OSError):
            descriptor = int(entry.name)
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            # A duplicate, so closing our socket object leaves the server's open.
            with socket.socket(fileno=os.dup(descriptor)) as probe:
                if probe.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                if not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    continue
                host, port = probe.getsockname()[:2]
                found[descriptor] = (str(host), int(port))
    return found


# adev listens on every interface. Its app does not want the token (no --allow-remote), but
# a client seeing a non-loopback host in runtime.json reads the token first, which fails
# without a vault; the loopback address reaches the same socket.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def preferred(addresses: list[Address]) -> Address:
    """IPv4 first (the terminal client and the docs speak of 127.0.0.1), as reached locally."""
    host, port = sorted(addresses, key=lambda address: ":" in address[0])[0]
    return _LOOPBACK_FOR.get(host, host), port


async def announce_runtime(app: web.Application) -> AsyncIterator[None]:
    home = app[appkeys.HOME]
    other = running_gateway(home.runtime_file)
    if other is not None:
        log.warning(
            "a gateway is already running for %s (pid %d, %s); runtime.json keeps naming it",
            home.root,
            other.pid,
            other.url,
        )
    before = set(listening_addresses()) if other is None else None
    task = None if before is None else asyncio.create_task(_write_when_bound(app, before))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        remove_runtime(home.runtime_file)


async def _write_when_bound(app: web.Application, before: set[int]) -> None:
    home = app[appkeys.HOME]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WAIT_SECONDS
    while loop.time() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        opened = [address for fd, address in listening_addresses().items() if fd not in before]
        if opened:
            host, port = preferred(opened)
            info = write_runtime(home.runtime_file, host, port)
            log.info("serving on %s; runtime.json written for the terminal client", info.url)
            return
    log.warning(
        "could not tell which port the development server listens on: no runtime.json "
        "written; give the terminal client --url ws://HOST:PORT/gateway"
    )


def setup_dev_server(app: web.Application) -> None:
    app.cleanup_ctx.append(announce_runtime)
