"""A chat completion to an OpenAI-kind provider: the body forwarded as an open object, the
reply relayed as it arrives, only its usage (and, for the cut-stream estimate, its text)
read on the way.

Streaming, the gateway always asks for the usage chunk (``stream_options.include_usage``);
a client that did not ask for it does not get it: that one chunk (empty ``choices``, the
usage) is left out of the relay. The bytes are relayed as each upstream chunk brings
them, never re-encoded: every event a chunk completes goes out in one write, and the bytes of
an event not yet ended wait for the chunk that ends it (events are relayed whole, so the
usage chunk can be left out).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from agentspace_gateway.llm.openai_errors import broken_stream, status_error, transport_error
from agentspace_gateway.llm.openai_stream import DONE, FINISH_REASONS, usage_counts
from agentspace_gateway.metering import BilledRequest, Failed, Stopped, TextStreamed, UsageReported
from agentspace_gateway.openai_api.errors import openai_error
from agentspace_gateway.proxy.sse import MAX_PENDING_BYTES, event_end, json_values

log = logging.getLogger(__name__)

_DONE = DONE.encode()
CLIENT_GONE = "client_gone"
UPSTREAM_FAILED = "upstream_failed"
# Never relayed: framing the gateway sets itself, and cookies the client must not keep.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "set-cookie"}
)


async def end_stopped(response: web.StreamResponse, reason: str) -> None:
    """A stream the gateway stopped ends with an error chunk saying why."""
    error = {"message": f"stream closed by the gateway: {reason}", "type": "server_error"}
    with contextlib.suppress(ConnectionResetError):
        await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
        await response.write_eof()


def read_chunks(billed: BilledRequest, datas: list[bytes]) -> list[bool]:
    """Feed what the chunks say, their text as one piece; for each, whether it is the
    usage-only chunk. Parsed together (``json_values``), as the Anthropic door's events are."""
    parsed = json_values(datas)
    texts: list[str] = []
    usage_only = [_read(billed, chunk, texts) for chunk in parsed]
    if texts:
        billed.feed(TextStreamed("".join(texts)))
    return usage_only


def _read(billed: BilledRequest, chunk: Any, texts: list[str]) -> bool:
    if not isinstance(chunk, dict):
        return False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            texts.append(delta["content"])
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(reason, str) and reason:
            billed.feed(Stopped(FINISH_REASONS.get(reason, reason)))
    usage = chunk.get("usage")
    if isinstance(usage, Mapping):
        billed.feed(UsageReported(usage_counts(usage)))
        return not chunk.get("choices")
    return False


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: str,
    key: str | None,
    body: dict[str, Any],
    billed: BilledRequest,
    provider: str,
    stopped: "asyncio.Future[str] | None" = None,
    began: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """``stopped``: set (and this task cancelled) when the gateway ends the stream itself,
    for a revoked client key or shutdown; the reason is the usage row's stop reason.
    ``began``: called once the first bytes of a stream have gone to the client."""
    streaming = body.get("stream") is True
    wants_usage = False
    if streaming:
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, Mapping) else {}
        wants_usage = options.get("include_usage") is True
        body["stream_options"] = {**options, "include_usage": True}
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    stop_reason = UPSTREAM_FAILED
    try:
        async with session.post(url, data=json.dumps(body), headers=headers) as upstream:
            if not streaming or upstream.status >= 400:
                reply = await upstream.read()
                if upstream.status >= 400:
                    billed.feed(
                        Failed(status_error(provider, upstream.status, reply, upstream.headers))
                    )
                else:
                    stop_reason = _read_whole(billed, reply)
                return web.Response(
                    status=upstream.status,
                    body=reply,
                    headers={
                        k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                    },
                )
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
            stop_reason = CLIENT_GONE
            try:
                finished = await _relay(upstream, response, billed, wants_usage, began)
            except asyncio.CancelledError:
                if stopped is None or not stopped.done():
                    raise
                stop_reason = stopped.result()
                await end_stopped(response, stop_reason)
                return response
            if not finished:
                # Cut before [DONE]: said in the stream, as OpenAI's clients read errors
                # there, rather than an end that looks like a whole reply.
                failure = broken_stream(provider)
                billed.feed(Failed(failure))
                error = {"message": failure.message, "type": "server_error", "param": None}
                await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
            stop_reason = billed.stop_reason or ("end_turn" if finished else UPSTREAM_FAILED)
            await response.write_eof()
            return response
    except (aiohttp.ClientError, TimeoutError) as error:
        billed.feed(Failed(transport_error(provider, url, error)))
        if stop_reason == CLIENT_GONE:
            raise  # the stream had begun: nothing more can be said to the client
        return openai_error(502, f"The gateway could not reach {provider}: {error}", "server_error")
    except ConnectionResetError:
        stop_reason = CLIENT_GONE
        raise
    finally:
        await billed.settle(stop_reason=stop_reason)


def _read_whole(billed: BilledRequest, reply: bytes) -> str:
    try:
        parsed = json.loads(reply)
    except ValueError:
        return UPSTREAM_FAILED
    if not isinstance(parsed, dict):
        return UPSTREAM_FAILED
    for choice in parsed.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            billed.feed(TextStreamed(message["content"]))
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(reason, str):
            billed.feed(Stopped(FINISH_REASONS.get(reason, reason)))
    usage = parsed.get("usage")
    if isinstance(usage, Mapping):
        billed.feed(UsageReported(usage_counts(usage)))
    return billed.stop_reason or "end_turn"


async def _relay(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    billed: BilledRequest,
    wants_usage: bool,
    began: Callable[[], None] | None = None,
) -> bool:
    """Relay the events each chunk completes, in one write; True when the upstream sent
    [DONE]. A cut connection or a read that timed out ends the relay as the stream's end
    does, and whether [DONE] came says which."""
    pending = bytearray()
    searched = 0  # the bytes of pending before this were searched for an event's end
    carriage_returns = False
    try:
        async for chunk in upstream.content.iter_any():
            pending += chunk
            carriage_returns = carriage_returns or b"\r" in chunk
            events: list[tuple[int, int, bytes]] = []  # start, end with its blank line, data
            start = 0
            done = False
            while not done:
                end, gap = event_end(
                    pending, max(start, searched - 3), carriage_returns=carriage_returns
                )
                if end < 0:
                    break
                data = _event_data(pending, start, end)
                done = data == _DONE
                if data and not done:
                    events.append((start, end + gap, data))
                start = end + gap
            relayed = bytes(pending[:start])
            if events:
                usage_only = read_chunks(billed, [data for _, _, data in events])
                if any(usage_only) and not wants_usage:
                    relayed = _without(pending, start, events, usage_only)
            del pending[:start]
            if len(pending) > MAX_PENDING_BYTES:
                # No event is this long (a usage chunk is a few hundred bytes): relayed as
                # it is rather than held without bound.
                relayed += bytes(pending)
                pending.clear()
            searched = len(pending)
            if relayed:
                await response.write(relayed)
                if began is not None:
                    began()
                    began = None
            if done:
                return True
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("the stream from %s broke: %s", upstream.url.host, error)
    if pending:
        await response.write(bytes(pending))
    return False


def _without(
    pending: bytearray, end: int, events: list[tuple[int, int, bytes]], left_out: list[bool]
) -> bytes:
    """``pending[:end]`` without the events left out."""
    pieces = []
    kept = 0
    for (start, stop, _), out in zip(events, left_out, strict=True):
        if out:
            pieces.append(pending[kept:start])
            kept = stop
    pieces.append(pending[kept:end])
    return b"".join(pieces)


def _event_data(pending: bytearray, start: int, end: int) -> bytes:
    """The data of the SSE event at ``pending[start:end]`` (its data lines joined); empty when
    it has none."""
    if (
        pending.startswith(b"data: ", start)
        and pending.find(b"\n", start, end) < 0
        and pending.find(b"\r", start, end) < 0
    ):
        return bytes(pending[start + 6 : end])  # OpenAI's every event: one data line
    data = []
    block = bytes(pending[start:end])
    for line in block.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        field, _, value = line.partition(b":")
        if field == b"data":
            data.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(data)
