"""Small helpers for talking to the gateway over a real WebSocket in tests."""

import json
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType


async def request(ws: ClientWebSocketResponse, message: dict[str, Any] | str) -> None:
    await ws.send_str(message if isinstance(message, str) else json.dumps(message))


async def receive(ws: ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    frame = await ws.receive(timeout=timeout)
    assert frame.type is WSMsgType.TEXT, f"expected a text frame, got {frame.type}: {frame.data!r}"
    data: dict[str, Any] = json.loads(frame.data)
    return data


async def exchange(ws: ClientWebSocketResponse, message: dict[str, Any] | str) -> dict[str, Any]:
    await request(ws, message)
    return await receive(ws)


async def replies_to(
    ws: ClientWebSocketResponse, request_id: str, *, count: int = 1, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Collect messages until ``count`` of them answer ``request_id``; others are kept too."""
    seen: list[dict[str, Any]] = []
    while sum(1 for m in seen if m.get("requestId") == request_id) < count:
        seen.append(await receive(ws, timeout))
    return seen
