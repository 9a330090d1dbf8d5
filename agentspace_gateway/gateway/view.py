"""GET /gateway: check access, upgrade, then read frames and hand each to the dispatcher."""

import asyncio
import logging

import nanoid
from aiohttp import WSMsgType, web

from agentspace_gateway import appkeys
from agentspace_gateway.audited_keys import Actor, AuditEvent
from agentspace_gateway.bearer import challenge, presented_token
from agentspace_gateway.gateway.access import check_access, token_required
from agentspace_gateway.gateway.connection import ConnectionContext, OutboundLimits
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.messages import Auth, Authenticated
from agentspace_gateway.protocol.wire import DecodeError

log = logging.getLogger(__name__)

AUTH_FAILED = 4401


async def gateway(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[appkeys.CONFIG]
    actor = Actor(request.remote, request.headers.get("User-Agent"))
    refusal = check_access(request, config)
    if refusal is not None:
        await _audit(app, AuditEvent.GATEWAY_REFUSED, actor, refusal.message)
        return json_error(refusal.status, refusal.code, refusal.message)

    needs_token = token_required(config)
    authenticated = not needs_token
    if needs_token:
        vault = app[appkeys.VAULT]
        if vault.keys is None:
            return json_error(
                503,
                "VAULT_UNAVAILABLE",
                "The gateway requires a token but the credential vault holding it is "
                f"unavailable: {vault.problem}",
            )
        if "Authorization" in request.headers:
            presented = presented_token(request.headers["Authorization"])
            if presented.token is None or not await vault.keys.token_is_valid(presented.token):
                reason = presented.problem or "wrong bearer token"
                await _audit(app, AuditEvent.ACCESS_DENIED, actor, f"gateway upgrade: {reason}")
                return json_error(
                    401,
                    "UNAUTHORIZED",
                    f"{reason}. See the token with: agentspace-gateway token show",
                    headers=challenge(invalid=presented.token is not None),
                )
            authenticated = True

    socket = web.WebSocketResponse(
        heartbeat=config.gateway.heartbeat_seconds, max_msg_size=config.gateway.max_frame_bytes
    )
    await socket.prepare(request)
    context = ConnectionContext(
        connection_id=nanoid.generate(size=10),
        peer=request.remote,
        app=app,
        request=request,
        socket=socket,
        codec=app[appkeys.CODEC],
        limits=OutboundLimits(
            max_messages=config.gateway.outbound_queue_messages,
            max_bytes=config.gateway.outbound_queue_bytes,
            slow_client_seconds=config.gateway.slow_client_seconds,
        ),
    )
    connections = app[appkeys.CONNECTIONS]
    connections.add(context)
    context.start_writer()
    log.debug("connection %s opened from %s", context.id, context.peer)
    try:
        if not authenticated and not await _authenticate(context, socket, actor):
            return socket
        await _read_frames(context, socket)
    finally:
        connections.discard(context)
        await context.stop_writer()
        log.debug("connection %s closed (code %s)", context.id, socket.close_code)
    return socket


async def _authenticate(
    context: ConnectionContext, socket: web.WebSocketResponse, actor: Actor
) -> bool:
    """Browsers cannot set headers, so the token may come as the first frame instead."""
    config = context.app[appkeys.CONFIG]
    keys = context.app[appkeys.VAULT].keys
    reason = "no auth frame within the time allowed"
    try:
        frame = await socket.receive(timeout=config.gateway.auth_timeout_seconds)
    except TimeoutError:
        frame = None
    if frame is not None and frame.type is WSMsgType.TEXT:
        try:
            message = context.app[appkeys.CODEC].decode(frame.data)
        except DecodeError as error:
            message, reason = None, f"first frame invalid: {error.message}"
        if isinstance(message, Auth):
            if keys is not None and await keys.token_is_valid(message.token):
                context.send(Authenticated())
                return True
            reason = "wrong token in auth frame"
        elif message is not None:
            reason = f"first frame was {message.type}, not auth"
    elif frame is not None and frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
        return False
    await _audit(context.app, AuditEvent.ACCESS_DENIED, actor, f"gateway: {reason}")
    await context.close(AUTH_FAILED, "authentication required")
    return False


async def _read_frames(context: ConnectionContext, socket: web.WebSocketResponse) -> None:
    dispatcher = context.app[appkeys.DISPATCHER]
    running: set[asyncio.Task[None]] = set()
    try:
        async for frame in socket:
            if frame.type is WSMsgType.TEXT:
                # Each message runs on its own, so a long stream never blocks ping or cancel.
                task = asyncio.create_task(dispatcher.dispatch(context, frame.data))
                running.add(task)
                task.add_done_callback(running.discard)
            elif frame.type is WSMsgType.BINARY:
                context.send_error(
                    ErrorCode.INVALID_MESSAGE,
                    "Binary frames are not part of the protocol; send JSON as text frames.",
                )
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _audit(app: web.Application, event: AuditEvent, actor: Actor, detail: str) -> None:
    await app[appkeys.AUDIT_LOG].record(
        event.value, remote_addr=actor.remote_addr, user_agent=actor.user_agent, detail=detail
    )


async def close_all(app: web.Application) -> None:
    """On shutdown, tell every client we are going away rather than dropping them."""
    connections: set[ConnectionContext] = app[appkeys.CONNECTIONS]
    await asyncio.gather(
        *(connection.close(1001, "server shutting down") for connection in list(connections)),
        return_exceptions=True,
    )
