"""Serve an aiohttp app on 127.0.0.1 until SIGTERM or SIGINT: the run of the bench's own
servers (the ceiling's bare WebSocket server, the fake OpenAI upstream).

Each is started as ``python -m benchmarks.NAME --port 0`` (``processes.start_module``) and
prints one ``listening on URL`` line once it accepts connections, which the driver waits for.
"""

import argparse
import asyncio
import signal
from collections.abc import Callable

from aiohttp import web


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
