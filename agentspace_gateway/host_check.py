"""DNS-rebinding defence: a request must name this gateway in its Host header.

A page on evil.example can make the browser resolve evil.example to 127.0.0.1 and then talk
to the gateway as "same origin". The browser still sends ``Host: evil.example``, so refusing
unknown host names (421) stops it, on every route including the WebSocket upgrade.
"""

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from agentspace_gateway.http_errors import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOCAL_NAMES = frozenset({"localhost"})


def split_host(header: str) -> str | None:
    """The host name of a Host header, without its port; None when it is malformed."""
    header = header.strip()
    if not header:
        return None
    if header.startswith("["):
        end = header.find("]")
        if end == -1:
            return None
        name, rest = header[1:end], header[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name, colon, port = header.rpartition(":")
    if not colon:
        name = header
    elif not port.isdigit() or ":" in name:
        return None
    return name.lower()


def is_loopback_name(name: str) -> bool:
    if name in LOCAL_NAMES:
        return True
    try:
        # ip_address only accepts real addresses, so 127.evil.example is not loopback.
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, extra_names: Iterable[str] = ()) -> bool:
    if header is None:
        return False
    name = split_host(header)
    if name is None:
        return False
    return is_loopback_name(name) or name in {extra.lower() for extra in extra_names}


def host_check_middleware(
    extra_names: Iterable[str],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    allowed = frozenset(name.lower() for name in extra_names)

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Host")
        if not host_allowed(header, allowed):
            return json_error(
                421,
                "MISDIRECTED_REQUEST",
                f"Host {header!r} is not served here. This gateway answers to localhost and "
                "loopback addresses; add other names to server.allowed_hosts in config.toml.",
            )
        return await handler(request)

    return check_host
