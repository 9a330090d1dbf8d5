"""One proxied ``POST /v1/messages``: sent upstream as received, relayed back as it comes.

A streamed reply's bytes go to the client as each chunk arrives, unchanged; an SSE scanner
looks over the same bytes for the usage billing needs. A reply that is not a stream (a JSON
message, or an upstream error) is relayed whole with its status, body and ``request-id``
untouched; a message's cost rides along in ``x-agentspace-cost-*`` headers.

However the stream ends (its end, an upstream error or drop, the client leaving, its key
revoked, the gateway stopping), the tokens Anthropic reported by then are settled into the
ledger; the upstream request is closed at once when the client is no longer there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from agentspace_gateway.llm.anthropic_usage import merge_usage
from agentspace_gateway.metering import (
    BilledRequest,
    Failed,
    Settlement,
    Stopped,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.pricing import TokenCounts, usd_text
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.proxy.open_streams import CLIENT_GONE, OpenStream
from agentspace_gateway.proxy.sse import SseEvent, SseScanner
from agentspace_gateway.proxy.upstream import error_message, json_object, response_headers

log = logging.getLogger(__name__)

# content_block_delta carries the streamed text, thinking and tool input: all billed as
# output, so their text is fed for the estimate a cut-off reply is billed on.
BILLED_EVENTS = ("message_start", "message_delta", "content_block_delta", "error")
_DELTA_TEXT = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}
_NOTHING = TokenCounts(0, 0)
# Stop reasons of the gateway's own, for a stream Anthropic did not end.
UPSTREAM_FAILED = "upstream_error"
UPSTREAM_DROPPED = "upstream_dropped"
INCOMPLETE = "incomplete"

COST_USD = "x-agentspace-cost-usd"
COST_NANOS = "x-agentspace-cost-nanos"
REQUEST_ID = "x-agentspace-request-id"
# The most of a stream's first data relayed before the pump starts (see relay_stream).
INLINE_FIRST_BYTES = 16 * 1024


def bill(billed: BilledRequest, events: list[SseEvent]) -> bool:
    """Feed what one read's events say, the text of deltas in a row as one piece (at tens of
    thousands of deltas a second, one event each is a cost); True when one was an error."""
    failed = False
    texts: list[str] = []
    for event in events:
        text = _delta_text(event)
        if text is not None:
            texts.append(text)
            continue
        if texts:
            billed.feed(TextStreamed("".join(texts)))
            texts = []
        billing_events(billed, event)
        failed = failed or event.name == "error"
    if texts:
        billed.feed(TextStreamed("".join(texts)))
    return failed


def _delta_text(event: SseEvent) -> str | None:
    if event.name != "content_block_delta" or not isinstance(event.data, dict):
        return None
    delta = event.data.get("delta")
    if not isinstance(delta, dict):
        return None
    field = _DELTA_TEXT.get(delta.get("type"))  # type: ignore[arg-type]
    text = None if field is None else delta.get(field)
    return text if isinstance(text, str) else None


def billing_events(billed: BilledRequest, event: SseEvent) -> None:
    data = json_object(event.data)
    if data is None:
        return
    if event.name == "content_block_delta":
        text = _delta_text(event)
        if text is not None:
            billed.feed(TextStreamed(text))
    elif event.name == "message_start":
        message = json_object(data.get("message")) or {}
        billed.feed(UsageReported(merge_usage(_NOTHING, message.get("usage"))))
    elif event.name == "message_delta":
        billed.feed(UsageReported(merge_usage(billed.counts, data.get("usage"))))
        delta = json_object(data.get("delta")) or {}
        if isinstance(delta.get("stop_reason"), str):
            billed.feed(Stopped(delta["stop_reason"]))
    elif event.name == "error":
        error = json_object(data.get("error")) or {}
        said = f"{error.get('type', 'error')}: {error.get('message', '')}"
        billed.feed(Failed(GatewayError(ErrorCode.LLM_ERROR, said)))


async def relay_stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    billed: BilledRequest,
    request_id: str,
    stream: OpenStream,
    began: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """``began``: called once the first chunk has gone to the client (work that can wait
    for the first byte waits for it)."""
    response = web.StreamResponse(status=upstream.status, headers=response_headers(upstream))
    response.headers[REQUEST_ID] = request_id
    scanner = SseScanner(BILLED_EVENTS)
    failure: str | None = None
    ended = False

    async def relay(chunk: bytes) -> None:
        nonlocal failure, began
        try:
            # To the client first, then read for billing: the scan and its JSON are off the
            # time to each chunk. Billed whatever the write did (a client gone mid-write
            # still leaves what the chunk reported owed).
            await response.write(chunk)
        finally:
            if bill(billed, scanner.feed(chunk)):
                failure = UPSTREAM_FAILED
        if began is not None:
            began()
            began = None

    async def pump(first: bytes) -> None:
        nonlocal failure, ended
        try:
            if first:
                await relay(first)
            async for chunk in upstream.content.iter_any():
                await relay(chunk)
            ended = True
        except (aiohttp.ClientError, TimeoutError) as error:
            # The client's SDK reads an SSE error event as the API's own mid-stream error.
            failure = UPSTREAM_DROPPED
            log.warning("proxy %s: upstream stream failed: %s", request_id, error)
            await response.write(_error_event(f"upstream stream failed: {error_message(error)}"))

    try:
        await response.prepare(request)
    except ConnectionResetError:
        upstream.close()
        await billed.settle(stop_reason=CLIENT_GONE)
        return response
    first = _buffered(upstream)
    if first and len(first) <= INLINE_FIRST_BYTES:
        # Usually the first events came in with the headers: relayed now, not a loop turn
        # later from the pump's task. This small a write never waits for the client (the
        # writer drains past 64 KiB), so no stop can go unseen meanwhile.
        try:
            await relay(first)
        except ConnectionResetError:
            upstream.close()
            await billed.settle(stop_reason=CLIENT_GONE)
            return response
        first = b""
    pumping = asyncio.ensure_future(pump(first))
    try:
        waiting: set[asyncio.Future[Any]] = {pumping, stream.stopped}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        # The client left (a test server cancels the handler): close upstream, keep the bill.
        await _close(pumping, upstream)
        await billed.settle(stop_reason=CLIENT_GONE)
        raise
    if pumping not in done:
        await _close(pumping, upstream)
        stop_reason = stream.stopped.result()
        await billed.settle(stop_reason=stop_reason)
        if stop_reason != CLIENT_GONE:
            # Stopped by the gateway (revoked key, shutdown): say why in the stream's terms.
            await _finish(response, _error_event(f"stream closed by the gateway: {stop_reason}"))
        return response
    error = pumping.exception()
    if isinstance(error, ConnectionResetError):
        upstream.close()
        await billed.settle(stop_reason=CLIENT_GONE)
        return response
    if error is not None:
        await billed.settle(stop_reason=UPSTREAM_FAILED)
        raise error
    stop_reason = failure or (billed.stop_reason if ended else None) or INCOMPLETE
    await billed.settle(stop_reason=stop_reason)
    await _finish(response, b"")
    return response


def _buffered(upstream: aiohttp.ClientResponse) -> bytes:
    """What the upstream's body has already delivered, without waiting; b"" when nothing (or
    a failure the pump will meet again and report)."""
    try:
        return upstream.content.read_nowait()
    except (aiohttp.ClientError, TimeoutError):
        return b""


async def _finish(response: web.StreamResponse, last: bytes) -> None:
    try:
        if last:
            await response.write(last)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left meanwhile; nothing is owed to it


async def _close(pumping: asyncio.Future[None], upstream: aiohttp.ClientResponse) -> None:
    pumping.cancel()
    upstream.close()  # the upstream connection is dropped now, not drained
    await asyncio.wait({pumping})


async def relay_whole(
    upstream: aiohttp.ClientResponse, billed: BilledRequest, request_id: str
) -> tuple[web.Response, Settlement]:
    body = await upstream.read()
    headers = response_headers(upstream)
    headers[REQUEST_ID] = request_id
    stop_reason = UPSTREAM_FAILED if upstream.status >= 400 else INCOMPLETE
    if upstream.status < 400:
        try:
            message = json_object(json.loads(body))
        except ValueError:
            message = None
        if message is not None and message.get("type") == "message":
            billed.feed(UsageReported(merge_usage(_NOTHING, message.get("usage"))))
            if isinstance(message.get("stop_reason"), str):
                stop_reason = message["stop_reason"]
    settlement = await billed.settle(stop_reason=stop_reason)
    if settlement.usage is not None:
        headers[COST_NANOS] = str(settlement.cost.total_nanousd)
        headers[COST_USD] = usd_text(settlement.cost.total_nanousd)
    return web.Response(status=upstream.status, body=body, headers=headers), settlement


def _error_event(message: str) -> bytes:
    data = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"
