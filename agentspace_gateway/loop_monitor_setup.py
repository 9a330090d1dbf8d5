"""The loop monitor's routes and life, when the config asks for it."""

from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.loop_monitor import LoopMonitor

LOOP_MONITOR = web.AppKey("loop_monitor", LoopMonitor)


async def _loop_report(request: web.Request) -> web.Response:
    return web.json_response(request.app[LOOP_MONITOR].snapshot())


async def _loop_reset(request: web.Request) -> web.Response:
    monitor = request.app[LOOP_MONITOR]
    report = monitor.snapshot()
    monitor.reset()
    return web.json_response(report)


async def _monitoring(app: web.Application) -> AsyncIterator[None]:
    monitor = app[LOOP_MONITOR]
    monitor.start()
    try:
        yield
    finally:
        monitor.stop()


def setup_loop_monitor(app: web.Application) -> None:
    """Watch the loop and add the /debug/loop routes, only when the config asks for it."""
    if not app[appkeys.CONFIG].server.loop_monitor:
        return
    app[LOOP_MONITOR] = LoopMonitor()
    app.cleanup_ctx.append(_monitoring)
    app.router.add_get("/debug/loop", _loop_report)
    app.router.add_post("/debug/loop/reset", _loop_reset)
