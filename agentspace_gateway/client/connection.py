"""One WebSocket connection to the gateway: open it, send requests, read what comes back.

A task reads frames the whole time the connection is open, so the gateway's heartbeat pings
are answered even while the user sits at the prompt; the frames wait in a queue, in order.
"""

import asyncio
import contextlib
import itertools
import json
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from agentspace_gateway import __version__
from agentspace_gateway.client.errors import (
    AUTH_FAILED,
    ClientError,
    ConnectionLost,
    GatewayRefused,
    GatewayUnreachable,
    ProtocolViolation,
    ReplyTimeout,
    TokenRequired,
)
from agentspace_gateway.client.events import ErrorReply, Event, parse_frame

# An inspection carries the session's whole history, so replies may be far larger than the
# 1 MiB the gateway accepts inbound; this bound only stops a runaway peer.
MAX_FRAME_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 30.0
REPLY_TIMEOUT_SECONDS = 60.0


class GatewayConnection:
    def __init__(
        self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, url: str
    ) -> None:
        self.url = url
        self._http = http
        self._ws = ws
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[Event | ClientError] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str | None = None) -> "GatewayConnection":
        """Connect; without a token, a ping proves the gateway does not want one."""
        headers = {"User-Agent": f"agentspace-gateway-client/{__version__}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS)
        http = aiohttp.ClientSession(timeout=timeout)
        try:
            ws = await _upgrade(http, url, headers)
        except BaseException:
            await http.close()
            raise
        connection = cls(http, ws, url)
        if token is None:
            try:
                await connection._handshake()
            except BaseException:
                await connection.close()
                raise
        return connection

    async def __aenter__(self) -> "GatewayConnection":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                await asyncio.wait_for(self._ws.close(), 5.0)
        finally:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            await self._http.close()

    async def wait_closed(self) -> None:
        """Return once the gateway has closed the connection (or it was lost)."""
        await asyncio.shield(self._reader)

    async def send(self, message_type: str, **fields: Any) -> str:
        """Send a request and return its id. A field set to None is left out, as the protocol
        wants optional keys absent rather than null."""
        request_id = f"c{next(self._ids)}"
        frame = {"type": message_type, "id": request_id}
        frame.update({key: value for key, value in fields.items() if value is not None})
        try:
            await self._ws.send_str(json.dumps(frame, ensure_ascii=False))
        except (aiohttp.ClientError, ConnectionError) as error:
            raise ConnectionLost(self._ws.close_code) from error
        return request_id

    async def next_event(self, within: float | None = None) -> Event:
        """The next frame from the gateway, waiting at most ``within`` seconds (None: no
        limit); raises once the connection has ended."""
        try:
            item = await asyncio.wait_for(self._events.get(), within)
        except TimeoutError:
            raise ReplyTimeout(f"the gateway sent nothing for {within:g} s") from None
        if isinstance(item, Event):
            return item
        self._events.put_nowait(item)  # so every later call sees the end too
        raise item

    async def request(
        self, message_type: str, *, within: float = REPLY_TIMEOUT_SECONDS, **fields: Any
    ) -> Event:
        """Send a request and wait for its reply. Frames answering anything else are dropped:
        call this only while nothing else is outstanding."""
        request_id = await self.send(message_type, **fields)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                event = await self.next_event(max(deadline - loop.time(), 0.0))
            except ReplyTimeout:
                raise ReplyTimeout(
                    f"the gateway did not answer {message_type} within {within:g} s"
                ) from None
            if event.answers(request_id):
                if event.type == "error":
                    raise ErrorReply(event)
                return event

    async def _handshake(self) -> None:
        try:
            await self.request("ping", within=CONNECT_TIMEOUT_SECONDS)
        except ConnectionLost as error:
            if error.close_code == AUTH_FAILED:
                raise TokenRequired(f"the gateway at {self.url} requires a token") from None
            raise

    async def _read(self) -> None:
        end: ClientError | None = None
        reason = ""
        try:
            while True:
                message = await self._ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._events.put_nowait(parse_frame(message.data))
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    reason = str(message.extra or "")
                    break
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        except ProtocolViolation as error:
            end = error
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self._events.put_nowait(end or ConnectionLost(self._ws.close_code, reason))


async def _upgrade(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> aiohttp.ClientWebSocketResponse:
    try:
        return await http.ws_connect(url, headers=headers, max_msg_size=MAX_FRAME_BYTES)
    except aiohttp.WSServerHandshakeError as error:
        message = await _refusal_message(http, url, headers) or f"HTTP {error.status}"
        if error.status == 401:
            raise TokenRequired(f"the gateway refused the connection: {message}") from None
        raise GatewayRefused(
            f"the gateway refused the connection ({error.status}): {message}", error.status
        ) from None
    except aiohttp.InvalidURL:
        raise ClientError(
            f"{url!r} is not a WebSocket URL; write it as ws://HOST:PORT/gateway", status=2
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise GatewayUnreachable(str(error) or type(error).__name__) from None


async def _refusal_message(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> str | None:
    """The gateway explains a refusal in a JSON body, which the WebSocket handshake error
    drops; the same checks answer a plain GET, so ask again to read it."""
    target = URL(url)
    target = target.with_scheme("https" if target.scheme == "wss" else "http")
    try:
        async with http.get(target, headers=headers) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None
