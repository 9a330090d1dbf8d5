"""tests/fake_openai.py as a process of its own, for the proxy scenario's OpenAI door.

``python -m benchmarks.fake_openai_server --port 0`` prints ``listening on
http://127.0.0.1:PORT/v1``. ``POST /_fake/scenarios`` (a JSON list of its Scenario fields)
queues what the next requests do, as the fake Anthropic process does; the fake itself is
the tests' own, unchanged, so the benchmark measures the protocol the tests check.
"""

import sys
from pathlib import Path

from aiohttp import web

from benchmarks.loopback_server import run

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


class _Forgetful(list):  # type: ignore[type-arg]
    def append(self, item: object) -> None:
        pass


if __name__ == "__main__":
    run(make_app, "http://127.0.0.1:{port}/v1", __doc__)
