"""The routes of Anthropic's API on the gateway: messages, count_tokens and models.

Routes match the path only: Claude Code posts ``/v1/messages?beta=true``, and the query goes
upstream as it came. ``HEAD /`` is answered by the console's ``GET /`` route (aiohttp adds
HEAD to every GET), so a client probing the base URL gets its 200.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from attrs import frozen

from agentspace_gateway.metering import Metering
from agentspace_gateway.proxy.attribution import SessionCache, attribute
from agentspace_gateway.proxy.audit_events import ClientEvent
from agentspace_gateway.proxy.auth import ClientAuth
from agentspace_gateway.proxy.errors import (
    anthropic_error,
    invalid_request,
    no_provider_key,
    too_large,
    upstream_unreachable,
)
from agentspace_gateway.proxy.inspection import ProxiedInspector
from agentspace_gateway.proxy.kept_requests import KeptRequests
from agentspace_gateway.proxy.models import model_page, one_model
from agentspace_gateway.proxy.open_streams import REVOKED, OpenStreams
from agentspace_gateway.proxy.relay import UPSTREAM_FAILED, relay_stream, relay_whole
from agentspace_gateway.proxy.upstream import Upstream, error_message, response_headers
from agentspace_gateway.storage.session_origins import SessionOrigins

log = logging.getLogger(__name__)

# Parsing a body this large takes milliseconds: off the event loop, like any such work.
_PARSE_IN_THREAD_BYTES = 512 * 1024


@frozen
class ProxyDoor:
    auth: ClientAuth
    upstream: Upstream
    metering: Metering
    origins: SessionOrigins
    sessions: SessionCache
    streams: OpenStreams
    models: list[dict[str, Any]]
    max_body_bytes: int
    timeout: aiohttp.ClientTimeout
    kept: KeptRequests
    inspector: ProxiedInspector


PROXY = web.AppKey("proxy", ProxyDoor)


async def read_body(request: web.Request, limit: int) -> bytes | web.Response:
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return too_large(limit)
    return bytes(body)


async def read_request(request: web.Request, door: ProxyDoor) -> tuple[bytes, str] | web.Response:
    """The raw body and its model; only "a JSON object with a model string" is checked."""
    body = await read_body(request, door.max_body_bytes)
    if isinstance(body, web.Response):
        return body
    try:
        if len(body) > _PARSE_IN_THREAD_BYTES:
            parsed = await asyncio.to_thread(json.loads, body)
        else:
            parsed = json.loads(body)
    except ValueError as error:
        return invalid_request(f"The request body is not valid JSON: {error}")
    if not isinstance(parsed, dict):
        return invalid_request("The request body must be a JSON object.")
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        return invalid_request("model: Field required (a model name string)")
    return body, model


async def messages(request: web.Request) -> web.StreamResponse:
    door = request.app[PROXY]
    client = await door.auth.authenticate(request)
    if isinstance(client, web.Response):
        return client
    read = await read_request(request, door)
    if isinstance(read, web.Response):
        return read
    body, model = read
    attributed = await attribute(door.sessions, request, client, model)
    if isinstance(attributed, web.Response):
        return attributed
    key = None
    if not door.auth.is_passthrough(client):
        key = await door.upstream.provider_key()
        if key is None:
            return no_provider_key()
    request_id = f"proxy_{uuid.uuid4().hex}"
    door.kept.keep(attributed.session.id, request_id, body)
    billed = door.metering.begin(
        session_id=attributed.session.id,
        model=model,
        request_id=request_id,
        estimated_input_tokens=None,
        attribution=attributed.attribution,
    )
    try:
        async with door.upstream.session.post(
            door.upstream.url(request.rel_url.path_qs),
            data=body,
            headers=door.upstream.request_headers(request, key),
            timeout=door.timeout,
            proxy=door.upstream.proxy,
        ) as upstream:
            if upstream.content_type == "text/event-stream" and upstream.status < 400:
                with door.streams.opened(client.id, request) as stream:
                    relayed = await relay_stream(request, upstream, billed, request_id, stream)
                if stream.stopped.done() and stream.stopped.result() == REVOKED:
                    door.auth.audit(
                        ClientEvent.STREAM_CLOSED,
                        request,
                        f"client {client.name}: open stream {request_id} closed, key revoked",
                    )
                return relayed
            response, _ = await relay_whole(upstream, billed, request_id)
            return response
    except (aiohttp.ClientError, TimeoutError) as error:
        # Nothing reached the client yet: the request failed before its reply began.
        log.warning("proxy %s: upstream request failed: %s", request_id, error)
        await billed.settle(stop_reason=UPSTREAM_FAILED)
        return upstream_unreachable(error_message(error))


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Forwarded as is; counting is free, so nothing is billed."""
    door = request.app[PROXY]
    client = await door.auth.authenticate(request)
    if isinstance(client, web.Response):
        return client
    read = await read_request(request, door)
    if isinstance(read, web.Response):
        return read
    key = None
    if not door.auth.is_passthrough(client):
        key = await door.upstream.provider_key()
        if key is None:
            return no_provider_key()
    try:
        async with door.upstream.session.post(
            door.upstream.url(request.rel_url.path_qs),
            data=read[0],
            headers=door.upstream.request_headers(request, key),
            timeout=door.timeout,
            proxy=door.upstream.proxy,
        ) as upstream:
            reply = await upstream.read()
            return web.Response(
                status=upstream.status, body=reply, headers=response_headers(upstream)
            )
    except (aiohttp.ClientError, TimeoutError) as error:
        return upstream_unreachable(error_message(error))


async def list_models(request: web.Request) -> web.Response:
    # The one route both APIs share; the OpenAI door imports this module, hence here.
    from agentspace_gateway.openai_api import routes as openai_api

    if openai_api.wants_openai_models(request):
        return await openai_api.list_models(request)
    door = request.app[PROXY]
    client = await door.auth.authenticate(request)
    if isinstance(client, web.Response):
        return client
    return model_page(door.models, request.query)


async def get_model(request: web.Request) -> web.Response:
    door = request.app[PROXY]
    client = await door.auth.authenticate(request)
    if isinstance(client, web.Response):
        return client
    return one_model(door.models, request.match_info["model_id"])


async def not_served(request: web.Request) -> web.Response:
    """Any other /v1 route, in Anthropic's envelope. Not forwarded: batches and files cost
    money the gateway would not see, and every request through it is metered."""
    return anthropic_error(
        404,
        "not_found_error",
        f"The gateway does not serve {request.method} {request.path}; it serves "
        "POST /v1/messages, POST /v1/messages/count_tokens and GET /v1/models.",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model_id}", get_model)
    app.router.add_route("*", "/v1/{tail:.*}", not_served)
