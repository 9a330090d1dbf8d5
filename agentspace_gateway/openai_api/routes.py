"""``POST /v1/chat/completions`` and the OpenAI shape of ``GET /v1/models``.

The client key, its attribution to a session and the billing are the Anthropic door's
(``proxy``): the same keys work on both doors, and every request is one usage row through
the metering pipeline. Routing is the chat's: ``provider/model``, an alias, or a Claude id;
an Anthropic model's request and reply are translated (``translate``, ``from_anthropic``).
"""

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.client_auth.attribution import attribute
from agentspace_gateway.client_auth.deferred import Deferred
from agentspace_gateway.metering import BilledRequest
from agentspace_gateway.metering.budget_headers import mark_clipped
from agentspace_gateway.metering.budget_refusals import refusal_message
from agentspace_gateway.openai_api.errors import (
    budget_refused,
    from_anthropic_response,
    from_gateway_error,
    invalid_request,
    openai_error,
)
from agentspace_gateway.openai_api.output_limit import OutputLimit, output_limit
from agentspace_gateway.openai_api.passthrough import forward
from agentspace_gateway.openai_api.to_anthropic import send_to_anthropic
from agentspace_gateway.openai_api.translate import TranslationError, to_anthropic
from agentspace_gateway.protocol.errors import GatewayError
from agentspace_gateway.providers import Provider
from agentspace_gateway.providers.catalog import catalog
from agentspace_gateway.proxy.input_estimate import estimate_input
from agentspace_gateway.proxy.routes import PROXY, read_body
from agentspace_gateway.storage.budgets import Scope


async def chat_completions(request: web.Request) -> web.StreamResponse:
    later = request.app[PROXY].held.deferred()
    try:
        return await _chat_completions(request, later)
    finally:
        later.run()  # whatever the way out, once: the use's audit row


async def _chat_completions(request: web.Request, later: Deferred) -> web.StreamResponse:
    door = request.app[PROXY]
    chat = request.app[CHAT]
    client = await door.auth.authenticate(request, later=later)
    if isinstance(client, web.Response):
        return from_anthropic_response(client)
    raw = await read_body(request, door.max_body_bytes)
    if isinstance(raw, web.Response):
        return from_anthropic_response(raw)
    try:
        body: Any = json.loads(raw)
    except ValueError as error:
        return invalid_request(f"The request body is not valid JSON: {error}")
    if not isinstance(body, dict):
        return invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid_request("you must provide a model parameter", "model")
    upstreams = chat.upstreams
    key: str | None = None
    try:
        route = upstreams.providers.route(model)
        anthropic_params = None
        if route.provider.kind == "anthropic":
            max_tokens = request.app[appkeys.CONFIG].anthropic.max_tokens
            anthropic_params = to_anthropic(body, route.model, max_tokens)
            anthropic_client = await chat.clients.client()
        else:
            key = await upstreams.openai.key(route.provider)
    except TranslationError as error:
        return invalid_request(str(error), error.param)
    except GatewayError as error:
        return from_gateway_error(error)
    attributed = await attribute(door.sessions, request, client, route.ledger_model, later)
    if isinstance(attributed, web.Response):
        return from_anthropic_response(attributed)
    default_max_tokens = request.app[appkeys.CONFIG].anthropic.max_tokens
    if anthropic_params is not None:
        limit = OutputLimit(anthropic_params["max_tokens"], 1, ("max_tokens",))
    else:
        limit = output_limit(body, default_max_tokens, route.provider.base_url)
    billed = await chat.metering.admit(
        Scope(
            session_id=attributed.session.id,
            client_key_id=attributed.attribution.client_key_id,
            agent_id=attributed.attribution.agent_id,
        ),
        session_id=attributed.session.id,
        model=route.ledger_model,
        request_id=f"openai_{uuid.uuid4().hex}",
        max_tokens=limit.total,
        # What a stream cut before its usage chunk (OpenAI reports usage only at the end)
        # is billed on, beside the text that came.
        estimated_input_tokens=await chat.estimator.count_async(_prompt_text(body)),
        # Tools and images count too, for the reservation's bound.
        input_for_budget=lambda: estimate_input(chat.estimator, body),
        attribution=attributed.attribution,
    )
    if not isinstance(billed, BilledRequest):
        return budget_refused(refusal_message(billed))
    if billed.admitted is not None and billed.admitted.reservation is not None:
        # Bounded upstream as it was reserved: clipped, or the default made explicit.
        per_choice = billed.admitted.max_tokens // limit.choices
        if per_choice < 1:
            await billed.settle(stop_reason="budget_exceeded")  # releases it; nothing billed
            return budget_refused(
                f"Budget exceeded: what is left of the budget covers {billed.admitted.max_tokens}"
                f" output tokens, fewer than one for each of the {limit.choices} choices asked"
                " (n); nothing was sent upstream. Ask for fewer choices."
            )
        if anthropic_params is not None:
            anthropic_params["max_tokens"] = per_choice
        else:
            body.update(dict.fromkeys(limit.fields, per_choice))
        if billed.max_tokens_clipped is not None:
            mark_clipped(request, per_choice)
    try:
        with door.streams.opened(client.id, request) as stream:
            if anthropic_params is not None:
                later.run()  # the SDK's request is slower than what waits here
                serving = asyncio.ensure_future(
                    send_to_anthropic(
                        request,
                        anthropic_client,
                        anthropic_params,
                        body,
                        billed,
                        model,
                        stream.stopped,
                    )
                )
            else:
                body["model"] = route.model
                serving = asyncio.ensure_future(
                    forward(
                        request,
                        upstreams.openai.session,
                        f"{route.provider.base_url}/chat/completions",
                        key,
                        body,
                        billed,
                        route.provider.name,
                        stream.stopped,
                        began=later.run,
                    )
                )
            return await _watched(serving, stream.stopped)
    finally:
        # A reply cancelled before it began still releases its reservation (a no-op when
        # the reply's own settle came first).
        await billed.settle(stop_reason="client_gone")


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return "\n".join(parts)


async def _watched(
    serving: "asyncio.Future[web.StreamResponse]", stopped: "asyncio.Future[str]"
) -> web.StreamResponse:
    """The reply, unless the gateway stops the stream first (a revoked key, shutdown): then
    the relay is cancelled, ends the stream saying why, and settles."""
    waiting: set[asyncio.Future[Any]] = {serving, stopped}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        serving.cancel()
        await asyncio.wait({serving})  # its settle lands before the cancellation goes on
        raise
    if not serving.done():
        serving.cancel()
        await asyncio.wait({serving})
    if serving.cancelled():  # stopped before its reply began: nothing was relayed yet
        return openai_error(503, f"Closed by the gateway: {stopped.result()}.", "server_error")
    return serving.result()


async def list_models(request: web.Request) -> web.Response:
    """OpenAI's list shape: ``{"object": "list", "data": [{"id", "object", "created",
    "owned_by"}]}``; the ids are the names this gateway routes."""
    door = request.app[PROXY]
    client = await door.auth.authenticate(request)
    if isinstance(client, web.Response):
        return from_anthropic_response(client)
    chat = request.app[CHAT]
    created = int(time.time())
    providers = chat.upstreams.providers
    entries = catalog(providers, chat.price_book)
    data = [
        {"id": entry.id, "object": "model", "created": created, "owned_by": entry.provider}
        for entry in entries
        if not entry.id.endswith("/*")
    ]
    local = [p for p in providers.by_name.values() if p.local]
    session = chat.upstreams.openai.session
    found = await asyncio.gather(*(local_models(session, p) for p in local))
    for provider, models in zip(local, found, strict=True):
        data += [
            {
                "id": f"{provider.name}/{model}",
                "object": "model",
                "created": created,
                "owned_by": provider.name,
            }
            for model in models
        ]
    return web.json_response({"object": "list", "data": data})


# A local server that is not running must not hold up the list (tools ask for it at start).
LOCAL_LIST_SECONDS = 1.0


async def local_models(session: aiohttp.ClientSession, provider: Provider) -> list[str]:
    """The models a local server has (its own GET /models); none when it does not answer."""
    try:
        async with session.get(
            f"{provider.base_url}/models",
            timeout=aiohttp.ClientTimeout(total=LOCAL_LIST_SECONDS),
        ) as response:
            listed = await response.json() if response.status == 200 else {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return []
    data = listed.get("data") if isinstance(listed, dict) else None
    return [m["id"] for m in data or () if isinstance(m, dict) and isinstance(m.get("id"), str)]


def wants_openai_models(request: web.Request) -> bool:
    """Anthropic's clients send anthropic-version (and x-api-key); OpenAI's never do."""
    return "anthropic-version" not in request.headers and "x-api-key" not in request.headers


def setup_openai_api(app: web.Application) -> None:
    # Before the Anthropic door's routes, whose /v1/{tail} would answer this path first.
    app.router.add_post("/v1/chat/completions", chat_completions)
