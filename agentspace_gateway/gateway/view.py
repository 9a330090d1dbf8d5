"""GET /gateway: check access, upgrade, then read frames and hand each to the dispatcher.

Where a credential is required (the default, loopback included), one of: the console's
session cookie, a client key (x-api-key or Authorization: Bearer; the connection then sees
only that client's sessions and usage), or the gateway token (Authorization: Bearer, or an
auth frame first for a browser page that cannot set headers).
"""

import asyncio
import logging
import math

import nanoid
from aiohttp import WSCloseCode, WSMsgType, web

from agentspace_gateway import appkeys
from agentspace_gateway.audited_keys import Actor, AuditEvent
from agentspace_gateway.bearer import challenge, presented_token
from agentspace_gateway.client_auth import CLIENT_AUTH
from agentspace_gateway.client_auth.keys import Refused, presented_keys
from agentspace_gateway.console_login import CONSOLE_LOGIN
from agentspace_gateway.failed_auth import judge_wrong, too_many_failures
from agentspace_gateway.gateway.access import check_access, token_required
from agentspace_gateway.gateway.connection import ConnectionContext, OutboundLimits
from agentspace_gateway.gateway.inbound_limits import (
    InboundLimits,
    TokenBucket,
    aiohttp_max_msg_size,
    frame_fits,
)
from agentspace_gateway.gateway.keys import CODEC, CONNECTIONS, DISPATCHER, TOKEN_HOLDERS
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.connection_messages import Auth, Authenticated
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.wire import DecodeError
from agentspace_gateway.storage.client_keys import ClientKey, looks_like_client_key

log = logging.getLogger(__name__)

AUTH_FAILED = 4401
# The address used up its wrong-token allowance (the key server answers 429 meanwhile).
TOO_MANY_FAILURES = 4429
# Under a millisecond of work between yields. Yielding after every frame cost pipelined
# throughput (11k against 20k pings/s, measured); after every 8, nothing past the noise.
FRAMES_BETWEEN_YIELDS = 8


async def gateway(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[appkeys.CONFIG]
    actor = Actor(request.remote, request.headers.get("User-Agent"))
    refusal = check_access(request, config)
    if refusal is not None:
        await _audit(app, AuditEvent.GATEWAY_REFUSED, actor, refusal.message)
        return json_error(refusal.status, refusal.code, refusal.message)

    needs_token = token_required(config)
    # The token this connection proved, kept so a rotation can close it later.
    token: str | None = None
    client: ClientKey | None = None
    # Proved before the upgrade: a client key, the console's cookie or the token in a header.
    # A client key named in a header wins over a cookie the client also carries: whoever
    # presents one asks to be that client, and gets no more than that client may.
    client_keys = [key for key in presented_keys(request) if looks_like_client_key(key)]
    proved = not needs_token
    if client_keys:
        checked = await app[CLIENT_AUTH].check(request, client_keys)
        if isinstance(checked, Refused):
            return _client_key_refused(checked)
        client, proved = checked, True
    by_cookie = False
    if not proved:
        proved = by_cookie = app[CONSOLE_LOGIN].request_has_session(request)
    if not proved:
        vault = app[appkeys.VAULT]
        if vault.keys is None:
            return json_error(
                503,
                ErrorCode.VAULT_UNAVAILABLE,
                "The gateway requires a credential: a client key (agentspace-gateway clients "
                "add NAME), the console's login cookie, or the gateway token, but the "
                f"credential vault holding the token is unavailable: {vault.problem}",
            )
        if "Authorization" in request.headers:
            # Checked before any lockout is consulted: the right token always gets in.
            presented = presented_token(request.headers["Authorization"])
            if presented.token is None or not await vault.keys.token_is_valid(presented.token):
                reason = presented.problem or "wrong bearer token"
                wait = await _wrong(app, actor, presented.token, "gateway upgrade", reason)
                if wait is not None:
                    return too_many_failures(wait)
                return json_error(
                    401,
                    ErrorCode.UNAUTHORIZED,
                    f"{reason}. See the token with: agentspace-gateway token show, or present "
                    "a client key (agentspace-gateway clients add NAME)",
                    headers=challenge(invalid=presented.token is not None),
                )
            token, proved = presented.token, True

    socket = web.WebSocketResponse(
        heartbeat=config.gateway.heartbeat_seconds,
        max_msg_size=aiohttp_max_msg_size(config.gateway.max_frame_bytes),
    )
    await socket.prepare(request)
    context = ConnectionContext(
        connection_id=nanoid.generate(size=10),
        peer=request.remote,
        app=app,
        request=request,
        socket=socket,
        codec=app[CODEC],
        limits=OutboundLimits(
            max_messages=config.gateway.outbound_queue_messages,
            max_bytes=config.gateway.outbound_queue_bytes,
            slow_client_seconds=config.gateway.slow_client_seconds,
        ),
    )
    context.client = client
    connections = app[CONNECTIONS]
    holders = app[TOKEN_HOLDERS]
    connections.add(context)
    log.debug("connection %s opened from %s", context.id, context.peer)
    try:
        if not proved:
            token = await _authenticate(context, socket, actor)
            if token is None:
                return socket
        if token is not None:
            holders.add(context, token)
        if client is not None:
            holders.add_client(context, client.id)
        if by_cookie:
            holders.add_console(context)
        await _read_frames(context, socket, InboundLimits.from_config(config.gateway))
    finally:
        holders.discard(context)
        connections.discard(context)
        await context.stop_writer()
        log.debug("connection %s closed (code %s)", context.id, socket.close_code)
    return socket


async def _authenticate(
    context: ConnectionContext, socket: web.WebSocketResponse, actor: Actor
) -> str | None:
    """Browsers cannot set headers, so the token may come as the first frame instead.

    Returns the token once it is proved; otherwise the connection is closed.
    """
    app = context.app
    config = app[appkeys.CONFIG]
    keys = app[appkeys.VAULT].keys
    reason = "no auth frame within the time allowed"
    try:
        frame = await socket.receive(timeout=config.gateway.auth_timeout_seconds)
    except TimeoutError:
        frame = None
    if frame is not None and frame.type is WSMsgType.TEXT:
        try:
            message = app[CODEC].decode(frame.data)
        except DecodeError as error:
            message, reason = None, f"first frame invalid: {error.message}"
        if isinstance(message, Auth) and keys is not None:
            if await keys.token_is_valid(message.token):
                context.send(Authenticated())
                return message.token
            wait = await _wrong(app, actor, message.token, "gateway", "wrong token in auth frame")
            if wait is not None:
                await context.close(
                    TOO_MANY_FAILURES, f"too many wrong tokens; retry in {math.ceil(wait)} s"
                )
            else:
                await context.close(AUTH_FAILED, "authentication required")
            return None
        if message is not None:
            reason = f"first frame was {message.type}, not auth"
    elif frame is not None and frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    await _wrong(app, actor, None, "gateway", reason)
    await context.close(AUTH_FAILED, "authentication required")
    return None


async def _wrong(
    app: web.Application, actor: Actor, token: str | None, where: str, reason: str
) -> float | None:
    """A wrong (or missing) token, audited as the limiter allows; seconds to refuse it for."""

    async def record(kind: str, detail: str) -> None:
        event = AuditEvent.ACCESS_DENIED if kind == "denied" else AuditEvent.ACCESS_RATE_LIMITED
        await _audit(app, event, actor, detail)

    return await judge_wrong(
        app[appkeys.FAILED_AUTH], token, where=where, reason=reason, record=record
    )


async def _read_frames(
    context: ConnectionContext, socket: web.WebSocketResponse, limits: InboundLimits
) -> None:
    dispatcher = context.app[DISPATCHER]
    bucket = TokenBucket(limits.messages_per_second, limits.burst)
    running: set[asyncio.Task[None]] = set()
    unyielded = 0
    try:
        async for frame in socket:
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if not frame_fits(frame.data, limits.max_frame_bytes):
                await socket.close(
                    code=WSCloseCode.MESSAGE_TOO_BIG,
                    message=f"message larger than {limits.max_frame_bytes} bytes".encode(),
                )
                break
            wait = bucket.take()
            if wait:
                dispatcher.refuse_over_rate(context, frame.data, wait, limits)
            elif len(running) >= limits.max_inflight:
                # Refused rather than left unread: reading on is what lets a close, or a
                # chat.cancel, through while the handlers already running take their time.
                dispatcher.refuse_over_inflight(context, frame.data, limits)
            elif frame.type is WSMsgType.BINARY:
                context.send_error(
                    ErrorCode.INVALID_MESSAGE,
                    "Binary frames are not part of the protocol; send JSON as text frames.",
                )
            else:
                # Each message runs on its own, so a long stream never blocks ping or cancel.
                task = asyncio.create_task(dispatcher.dispatch(context, frame.data))
                running.add(task)
                task.add_done_callback(running.discard)
            unyielded += 1
            if unyielded >= FRAMES_BETWEEN_YIELDS:
                # Buffered frames are read without yielding: without this, a 64 KiB burst of
                # tiny frames would hold the event loop, and every other connection, until
                # all of them were answered.
                unyielded = 0
                await asyncio.sleep(0)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _client_key_refused(refused: Refused) -> web.Response:
    if refused.retry_after is not None:
        return json_error(
            refused.status,
            ErrorCode.TOO_MANY_FAILED_ATTEMPTS,
            refused.message,
            headers={"Retry-After": str(refused.retry_after)},
        )
    return json_error(refused.status, ErrorCode.UNAUTHORIZED, refused.message)


async def _audit(app: web.Application, event: AuditEvent, actor: Actor, detail: str) -> None:
    await app[appkeys.AUDIT_LOG].record(
        event.value, remote_addr=actor.remote_addr, user_agent=actor.user_agent, detail=detail
    )
