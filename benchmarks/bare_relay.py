"""A bare aiohttp relay of ``POST /v1/messages``: the floor any aiohttp proxy reaches here.

What the gateway's Anthropic door does with no door around it: the body read whole, the
request sent on one pooled ``aiohttp.ClientSession`` (the gateway's settings: no cap on the
pool, no cookies, the environment not read), the reply's status and content type sent
back and its bytes relayed as they come. No key, no metering, no ledger, no access log.
Scenario 9 measures it beside the gateway, so that what the gateway adds is told apart
from what aiohttp itself costs on this machine.

Run as ``python -m benchmarks.bare_relay --port 0 --upstream URL``; it prints
``listening on http://127.0.0.1:PORT``.
"""

import aiohttp
from aiohttp import web

from benchmarks.loopback_server import POOL, UPSTREAM, run_relay

FORWARDED = ("x-api-key", "anthropic-version", "anthropic-beta", "content-type")
# As the gateway's door: no total, a stalled read is a dead upstream.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    url = request.app[UPSTREAM] + "/v1/messages"
    async with request.app[POOL].post(url, data=body, headers=headers, timeout=TIMEOUT) as upstream:
        response = web.StreamResponse(status=upstream.status)
        response.content_type = upstream.content_type
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


if __name__ == "__main__":
    run_relay(web.post("/v1/messages", messages), "http://127.0.0.1:{port}", __doc__)
