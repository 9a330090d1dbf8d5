"""The HTTP doors' word that a budget lowered a request's ``max_tokens``.

A door marks the request (``mark_clipped``); whichever code prepares the response (a relay
streaming the upstream's reply, an error relayed whole) gets the header added here, so no
relay has to know about budgets.
"""

from __future__ import annotations

from aiohttp import web

MAX_TOKENS_CLIPPED = "x-agentspace-max-tokens-clipped"
_CLIPPED = web.RequestKey("agentspace_max_tokens_clipped", int)


def mark_clipped(request: web.Request, max_tokens: int | None) -> None:
    if max_tokens is not None:
        request[_CLIPPED] = max_tokens


async def add_clipped_header(request: web.Request, response: web.StreamResponse) -> None:
    clipped = request.get(_CLIPPED)
    if clipped is not None:
        response.headers[MAX_TOKENS_CLIPPED] = str(clipped)
