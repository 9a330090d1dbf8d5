"""The app's one HTTP pool to the providers: one ``aiohttp.ClientSession`` (one connector)
for the Anthropic API door, the chat's Messages requests and the OpenAI-kind providers,
opened in ``cleanup_ctx`` before any of them and closed after them all.

One pool, not one a door: a connection the chat opened to Anthropic serves the door's next
request too (no new TCP and TLS handshake), and the settings below are made in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from agentspace_gateway import appkeys

UPSTREAM_HTTP = web.AppKey("upstream_http", aiohttp.ClientSession)
# A connection that is not made in this long is not coming.
CONNECT_SECONDS = 30.0


def upstream_timeout(
    read_seconds: float, *, connect_seconds: float = CONNECT_SECONDS
) -> aiohttp.ClientTimeout:
    # No total: a long reply streams for minutes. A read that stalls this long is a dead
    # upstream.
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_seconds, sock_read=read_seconds)


def upstream_session(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A session to the providers; ``timeout``: its requests' unless they give their own."""
    return aiohttp.ClientSession(
        # aiohttp's default pool caps a session at 100 connections: the 101st stream would
        # wait for one to end. Each stream holds its own connection for as long as it runs.
        connector=aiohttp.TCPConnector(limit=0),
        auto_decompress=True,
        timeout=timeout,
        # Not trust_env: it reads ~/.netrc on every request (2 ms of each first byte here).
        # The proxy the environment names, if any, is looked up once by whoever needs it.
        trust_env=False,
        # Every client's requests share this session: a cookie one upstream reply set (a CDN's
        # bot cookie, say) would go out on every later client's requests. None is kept.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def upstream_http_context(app: web.Application) -> AsyncIterator[None]:
    session = upstream_session(upstream_timeout(app[appkeys.CONFIG].anthropic.timeout_seconds))
    app[UPSTREAM_HTTP] = session
    try:
        yield
    finally:
        await session.close()


def setup_upstream_http(app: web.Application) -> None:
    """Before the chat's and the doors' setup: their contexts find the pool open."""
    app.cleanup_ctx.append(upstream_http_context)
