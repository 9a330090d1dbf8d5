"""Serve an aiohttp app on 127.0.0.1 until SIGTERM or SIGINT: the run of the bench's own
servers (the ceiling's bare WebSocket server, the fake OpenAI upstream, the bare relays).

Each is started as ``python -m benchmarks.NAME --port 0`` (``processes.start_module``) and
prints one ``listening on URL`` line once it accepts connections, which the driver waits for.
"""

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

# A bare relay's upstream (its base URL) and its one pooled session to it.
UPSTREAM = web.AppKey("upstream", str)
POOL = web.AppKey("pool", aiohttp.ClientSession)


async def serve_until_signal(app: web.Application, port: int, url: str) -> None:
    """``url`` is formatted with the bound ``port`` and announced once the site listens."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on {url.format(port=runner.addresses[0][1])}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def run(make_app: Callable[[], web.Application], url: str, description: str | None) -> None:
    """The command line of such a server: ``--port`` (0 picks a free one), then serve."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port

    async def serve() -> None:
        # Built inside the loop, as the fakes expect to be.
        await serve_until_signal(make_app(), port, url)

    asyncio.run(serve())


def relay_app(upstream: str, route: web.RouteDef) -> web.Application:
    """A bare relay's app: its one ``route``, ``upstream``'s URL, and one pooled session with
    the gateway's pool settings (no cap, no cookies, the environment not read)."""
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(_pool_context)
    app.router.add_routes([route])
    return app


async def _pool_context(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    yield
    await app[POOL].close()


def run_relay(route: web.RouteDef, url: str, description: str | None) -> None:
    """The command line of a bare relay serving ``route``: ``--port`` and ``--upstream
    URL``, then serve."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    arguments = parser.parse_args()
    app = relay_app(arguments.upstream, route)
    asyncio.run(serve_until_signal(app, arguments.port, url))
