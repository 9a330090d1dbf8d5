"""A chat completion to an Anthropic model: translated (``translate``), sent with the
chat's Anthropic client, its reply translated back (``from_anthropic``), billed through
the metering pipeline under the Claude id."""

import asyncio
from collections.abc import Mapping
from typing import Any

import anthropic
from aiohttp import web

from agentspace_gateway.metering import BilledRequest
from agentspace_gateway.openai_api.from_anthropic import (
    completion,
    error_response,
    relay_chunks,
    stream_failed,
)
from agentspace_gateway.openai_api.passthrough import end_stopped

_SAMPLING = ("temperature", "top_p")
CLIENT_GONE = "client_gone"
UPSTREAM_FAILED = "upstream_failed"


async def send_to_anthropic(
    request: web.Request,
    client: anthropic.AsyncAnthropic,
    params: dict[str, Any],
    body: Mapping[str, Any],
    billed: BilledRequest,
    model: str,
    stopped: "asyncio.Future[str] | None" = None,
) -> web.StreamResponse:
    """``stopped`` as for ``passthrough.forward``: the gateway ending the stream itself."""
    stop_reason = UPSTREAM_FAILED
    # The SDK's create() no longer names sampling parameters; the API still takes them.
    params = dict(params)
    sampling = {name: params.pop(name) for name in _SAMPLING if name in params}
    if sampling:
        params["extra_body"] = sampling
    try:
        if body.get("stream") is not True:
            try:
                message = await client.messages.create(**params)
            except Exception as error:
                return error_response(error)
            reply = completion(message, billed, model)
            stop_reason = billed.stop_reason or "end_turn"
            return web.json_response(reply)
        options = body.get("stream_options")
        wants_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        try:
            stream = await client.messages.create(**params, stream=True)
        except Exception as error:
            return error_response(error)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        stop_reason = CLIENT_GONE
        async with stream:
            try:
                await relay_chunks(stream, response, billed, model, wants_usage=wants_usage)
            except asyncio.CancelledError:
                if stopped is None or not stopped.done():
                    raise
                stop_reason = stopped.result()
                await end_stopped(response, stop_reason)
                return response
            except ConnectionResetError:
                raise  # the client left: nothing more to tell it
            except Exception as error:  # the SDK's errors, and the transport's under it
                await response.write(stream_failed(billed, error))
        stop_reason = billed.stop_reason or UPSTREAM_FAILED
        await response.write_eof()
        return response
    finally:
        await billed.settle(stop_reason=stop_reason)
