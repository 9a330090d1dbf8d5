"""A bare aiohttp WebSocket server: the ceiling any aiohttp server reaches on this machine.

Run as a process of its own (``python -m benchmarks.bare_server --port 0``; it prints
``listening on ws://127.0.0.1:PORT/``). Sent ``send N FRAME`` it sends FRAME N times, as
fast as ``send_str`` allows, then ``done``; any other text frame it echoes back, as the
gateway answers a ping with a pong, without decoding or validating anything.
"""

from aiohttp import WSMsgType, web

from benchmarks.loopback_server import run


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            continue
        if message.data.startswith("send "):
            _, count, frame = message.data.split(" ", 2)
            for _ in range(int(count)):
                await ws.send_str(frame)
            await ws.send_str("done")
        else:
            await ws.send_str(message.data)
    return ws


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", socket)
    return app


if __name__ == "__main__":
    run(make_app, "ws://127.0.0.1:{port}/", __doc__)
