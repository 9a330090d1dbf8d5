"""Small helpers for talking to the gateway over a real WebSocket in tests.

Every frame goes through the published JSON Schema both ways: a frame the gateway sends
must conform to it, and a frame a test sends must conform exactly when the gateway decodes
it, so a test that sends a bad frame on purpose also checks that the schema refuses it.
"""

import json
import re
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import ClientWebSocketResponse, WSMsgType

from schema_check import assert_server_frame, client_frame_conforms

# The request ids sent on each connection, with whether the schema accepts their frame.
_sent: "WeakKeyDictionary[ClientWebSocketResponse, dict[str, bool]]" = WeakKeyDictionary()
# The schema is about JSON values; a lone surrogate escape is refused before that, as text.
_SURROGATE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _remember(ws: ClientWebSocketResponse, message: dict[str, Any] | str) -> None:
    if isinstance(message, str):
        if _SURROGATE.search(message):
            return
        try:
            message = json.loads(message, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return
    if isinstance(message, dict) and isinstance(message.get("id"), str):
        _sent.setdefault(ws, {})[message["id"]] = client_frame_conforms(message)


def _check(ws: ClientWebSocketResponse, frame: dict[str, Any]) -> None:
    assert_server_frame(frame)
    request_id = frame.get("requestId")
    conforms = _sent.get(ws, {}).get(request_id) if isinstance(request_id, str) else None
    if conforms is None:
        return  # not a reply to a frame sent through request()
    code = frame.get("code") if frame["type"] == "error" else None
    if code in ("UNKNOWN_TYPE", "RATE_LIMITED"):
        return  # refused unread: by this app's set of handlers, or by the message rate
    decoded = code != "INVALID_MESSAGE"
    assert conforms == decoded, (
        f"the published schema {'accepts' if conforms else 'refuses'} the frame sent as "
        f"{request_id!r}, but the gateway {'decoded' if decoded else 'refused'} it: {frame}"
    )


async def request(ws: ClientWebSocketResponse, message: dict[str, Any] | str) -> None:
    _remember(ws, message)
    await ws.send_str(message if isinstance(message, str) else json.dumps(message))


async def receive(ws: ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    frame = await ws.receive(timeout=timeout)
    assert frame.type is WSMsgType.TEXT, f"expected a text frame, got {frame.type}: {frame.data!r}"
    data: dict[str, Any] = json.loads(frame.data)
    _check(ws, data)
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
