"""tests/fake_openai.py as a process of its own, for the proxy scenario's OpenAI door.

``python benchmarks/fake_openai_server.py --port 0`` prints ``listening on
http://127.0.0.1:PORT/v1``. ``POST /_fake/scenarios`` (a JSON list of its Scenario fields)
queues what the next requests do, as the fake Anthropic process does; the fake itself is
the tests' own, unchanged, so the benchmark measures the protocol the tests check.
"""

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import FakeOpenAI, Scenario  # type: ignore[import-not-found]


def make_app() -> web.Application:
    fake = FakeOpenAI()
    # Recording every request would grow without bound over a run.
    fake.requests = _Forgetful()
    app: web.Application = fake.make_app()

    async def control(request: web.Request) -> web.Response:
        fields = await request.json()
        fake.enqueue(*(Scenario(**item) for item in fields))
        return web.json_response({"queued": len(fields)})

    app.router.add_post("/_fake/scenarios", control)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


class _Forgetful(list):  # type: ignore[type-arg]
    def append(self, item: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
