"""A bare aiohttp WebSocket chat relay: the floor of a chat's CPU on this machine.

What the gateway's chat does with nothing of the gateway around it: a ``chat.send`` frame
in, one Messages request to the upstream on a pooled ``aiohttp.ClientSession`` (as the
gateway's chat sends it, not through the SDK), each text delta out as a frame shaped like
the gateway's (``benchmarks.streams.gateway_stream`` reads both), an end frame with the
output count. Nothing is stored, estimated, priced or checked: no session, history, ledger,
budget or key. Scenario 2 measures its CPU per chat beside the gateway's.

Run as ``python -m benchmarks.bare_chat --port 0 --upstream URL``; it prints
``listening on ws://127.0.0.1:PORT/``.
"""

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from benchmarks.loopback_server import POOL, UPSTREAM, run_relay
from benchmarks.streams import MODEL

HEADERS = {"x-api-key": "bare", "anthropic-version": "2023-06-01"}


async def reply(ws: web.WebSocketResponse, app: web.Application, send: dict[str, Any]) -> None:
    request_id = send["id"]
    start = {"type": "chat.stream.start", "requestId": request_id, "sessionId": "bare"}
    await ws.send_str(json.dumps(start))
    body = {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": send["content"]}],
        "stream": True,
    }
    deltas = 0
    url = app[UPSTREAM] + "/v1/messages"
    async with app[POOL].post(url, json=body, headers=HEADERS) as upstream:
        pending = b""
        async for chunk in upstream.content.iter_any():
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"data: ") and b'"text_delta"' in line:
                    text = json.loads(line[6:])["delta"]["text"]
                    frame = {"type": "chat.stream.delta", "requestId": request_id, "text": text}
                    await ws.send_str(json.dumps(frame, separators=(",", ":")))
                    deltas += 1
    end = {"type": "chat.stream.end", "requestId": request_id, "usage": {"outputTokens": deltas}}
    await ws.send_str(json.dumps(end))


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    replies: set[asyncio.Task[None]] = set()
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            send = json.loads(message.data)
            if send.get("type") == "chat.send":
                task = asyncio.ensure_future(reply(ws, request.app, send))
                replies.add(task)
                task.add_done_callback(replies.discard)
    return ws


if __name__ == "__main__":
    run_relay(web.get("/", socket), "ws://127.0.0.1:{port}/", __doc__)
