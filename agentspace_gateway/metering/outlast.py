"""A wait that outlasts its caller's cancellation: what must land whole (a usage row, a
budget reservation's release, the end of an upstream request) is waited for to its end."""

import asyncio
from typing import Any


async def outlast(task: "asyncio.Future[Any]") -> bool:
    """Wait for ``task`` to end however often this task is cancelled meanwhile (aiohttp
    cancels a handler twice at shutdown); True if it was cancelled."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
