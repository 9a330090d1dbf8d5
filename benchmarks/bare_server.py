"""A bare aiohttp WebSocket server: the ceiling any aiohttp server reaches on this machine.

Run as a process of its own (``python benchmarks/bare_server.py --port 0``; it prints
``listening on ws://127.0.0.1:PORT/``). Sent ``send N FRAME`` it sends FRAME N times, as
fast as ``send_str`` allows, then ``done``; any other text frame it echoes back, as the
gateway answers a ping with a pong, without decoding or validating anything.
"""

import argparse
import asyncio
import signal

from aiohttp import WSMsgType, web


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


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/", socket)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on ws://127.0.0.1:{runner.addresses[0][1]}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
