"""The routes of Anthropic's API on the gateway: messages, count_tokens and models.

Routes match the path only: Claude Code posts ``/v1/messages?beta=true``, and the query goes
upstream as it came. ``HEAD /`` is answered by the console's ``GET /`` route (aiohttp adds
HEAD to every GET), so a client probing the base URL gets its 200.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from attrs import frozen

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.client_auth.attribution import Attributed, SessionCache, attribute
from agentspace_gateway.client_auth.audit_events import ClientEvent
from agentspace_gateway.client_auth.deferred import Deferred, HeldWork
from agentspace_gateway.client_auth.keys import ClientAuth
from agentspace_gateway.metering import BilledRequest, Metering
from agentspace_gateway.metering.budget_headers import mark_clipped
from agentspace_gateway.metering.budget_refusals import refusal_message
from agentspace_gateway.proxy.errors import (
    anthropic_error,
    budget_refused,
    invalid_request,
    no_provider_key,
    too_large,
    upstream_unreachable,
)
from agentspace_gateway.proxy.input_estimate import estimate_input
from agentspace_gateway.proxy.inspection import ProxiedInspector
from agentspace_gateway.proxy.kept_requests import KeptRequests
from agentspace_gateway.proxy.models import model_page, one_model
from agentspace_gateway.proxy.open_streams import CLIENT_GONE, REVOKED, OpenStreams
from agentspace_gateway.proxy.relay import UPSTREAM_FAILED, relay_stream, relay_whole
from agentspace_gateway.proxy.upstream import Upstream, error_message, response_headers
from agentspace_gateway.storage.budgets import Scope
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
    # Both doors' deferred work, held while any request is before its first byte.
    held: HeldWork


PROXY = web.AppKey("proxy", ProxyDoor)


async def read_body(request: web.Request, limit: int) -> bytes | web.Response:
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    # A small request's body has usually come in with its headers: taken as it is, without
    # the async iteration (1-2% of the gateway's time per request at 50 in flight).
    body = bytearray(request.content.read_nowait())
    if len(body) > limit:
        return too_large(limit)
    while not request.content.at_eof():
        body += await request.content.readany()
        if len(body) > limit:
            return too_large(limit)
    return bytes(body)


async def read_request(
    request: web.Request, door: ProxyDoor
) -> tuple[bytes, str, dict[str, Any]] | web.Response:
    """The raw body, its model and the parsed object; only "a JSON object with a model
    string" is checked."""
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
    return body, model, parsed


async def messages(request: web.Request) -> web.StreamResponse:
    door = request.app[PROXY]
    later = door.held.deferred()
    try:
        return await _messages(request, door, later)
    finally:
        later.run()  # whatever the way out, once: the use's audit row, the kept body


async def _messages(request: web.Request, door: ProxyDoor, later: Deferred) -> web.StreamResponse:
    client = await door.auth.authenticate(request, later=later)
    if isinstance(client, web.Response):
        return client
    read = await read_request(request, door)
    if isinstance(read, web.Response):
        return read
    body, model, parsed = read
    attributed = await attribute(door.sessions, request, client, model, later)
    if isinstance(attributed, web.Response):
        return attributed
    key = None
    if not door.auth.is_passthrough(client):
        key = await door.upstream.provider_key()
        if key is None:
            return no_provider_key()
    request_id = f"proxy_{uuid.uuid4().hex}"
    billed = await admit(request, door, attributed, model, parsed, request_id)
    if isinstance(billed, web.Response):
        return billed
    if billed.max_tokens_clipped is not None:
        body = with_max_tokens(parsed, billed.max_tokens_clipped)
    later.add(functools.partial(door.kept.keep, attributed.session.id, request_id, body))
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
                    relayed = await relay_stream(
                        request, upstream, billed, request_id, stream, began=later.run
                    )
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
    finally:
        # Whatever ended it (cancelled before the reply began, say): its reservation is
        # released. Settled already on every other way out, and a second settle is a no-op.
        await billed.settle(stop_reason=CLIENT_GONE)


async def admit(
    request: web.Request,
    door: ProxyDoor,
    attributed: Attributed,
    model: str,
    parsed: dict[str, Any],
    request_id: str,
) -> BilledRequest | web.Response:
    """The billed request, its worst case reserved against every budget that applies; or
    the refusal (429, not to be retried), and nothing goes upstream."""
    chat = request.app[CHAT]
    asked = requested_max_tokens(parsed, request.app[appkeys.CONFIG].anthropic.max_tokens)
    admitted = await door.metering.admit(
        Scope(
            session_id=attributed.session.id,
            client_key_id=attributed.attribution.client_key_id,
            agent_id=attributed.attribution.agent_id,
        ),
        session_id=attributed.session.id,
        model=model,
        request_id=request_id,
        max_tokens=asked,
        estimated_input_tokens=None,
        input_for_budget=lambda: estimate_input(chat.estimator, parsed),
        attribution=attributed.attribution,
    )
    if not isinstance(admitted, BilledRequest):
        return budget_refused(refusal_message(admitted))
    mark_clipped(request, admitted.max_tokens_clipped)
    return admitted


def requested_max_tokens(parsed: dict[str, Any], default: int) -> int:
    """The request's max_tokens (which Anthropic requires); the default for a request
    without a usable one, which Anthropic refuses unanswered."""
    asked = parsed.get("max_tokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return asked
    return default


def with_max_tokens(parsed: dict[str, Any], max_tokens: int) -> bytes:
    """The body with only max_tokens changed (re-encoded: the rest means the same)."""
    return json.dumps({**parsed, "max_tokens": max_tokens}, ensure_ascii=False).encode()


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
