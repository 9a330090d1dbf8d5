"""DNS-rebinding defence: a request must name this gateway in its Host header.

A page on evil.example can make the browser resolve evil.example to 127.0.0.1 and then talk
to the gateway as "same origin". The browser still sends ``Host: evil.example``, so refusing
unknown host names (421) stops it, on every route including the WebSocket upgrade.

A request may also name its host in the request line (``GET http://evil.example/ HTTP/1.1``,
the absolute form proxies use). RFC 9112 section 3.2.2 makes that authority override Host,
and aiohttp follows it (``request.host`` and ``request.url`` come from the target), so the
target's authority is checked against the same list, and a Host that disagrees with it is
refused as malformed: a request that names two hosts is not one to guess about.
"""

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOCAL_NAMES = frozenset({"localhost"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host_port(header: str) -> tuple[str, int | None] | None:
    """The host name and port (None when absent) of a Host header; None when it is malformed."""
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
            return str(ipaddress.IPv6Address(name)), int(rest[1:]) if rest else None
        except ValueError:
            return None
    name, colon, port = header.rpartition(":")
    if not colon:
        return header.lower(), None
    if not port.isdigit() or ":" in name:
        return None
    return name.lower(), int(port)


def split_host(header: str) -> str | None:
    """The host name of a Host header, without its port; None when it is malformed."""
    parsed = split_host_port(header)
    return None if parsed is None else parsed[0]


def target_authority(target: str) -> tuple[str, str] | None:
    """The scheme and authority a request target names, or None for one naming no host.

    The usual origin form (``/path``) and ``*`` name none: the Host header says where they
    go. The absolute form (``http://host:port/path``) names one, as does the authority form
    (``host:port``, which only CONNECT uses; its scheme is "").
    """
    if target.startswith("/") or target == "*":
        return None
    scheme, separator, rest = target.partition("://")
    if not separator:
        return "", target
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    return scheme.lower(), rest[:end]


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


def same_host(scheme: str, authority: str, header: str) -> bool:
    """Whether a Host header names what the target's authority does (RFC 9110 section 7.2)."""
    target, given = split_host_port(authority), split_host_port(header)
    if target is None or given is None:
        return False
    default = DEFAULT_PORTS.get(scheme)
    return (target[0], target[1] or default) == (given[0], given[1] or default)


def misdirection(
    target: str, header: str | None, allowed: Iterable[str]
) -> tuple[int, str, str] | None:
    """Why a request with this target and Host header is not for us, or None when it is."""
    named = target_authority(target)
    if named is not None:
        scheme, authority = named
        if "@" in authority:
            # RFC 9110 section 4.2.4: userinfo in an http(s) URI is to be treated as an error.
            return (
                400,
                ErrorCode.BAD_REQUEST,
                "The request target carries user information before its host; send the "
                "path alone (GET /health), with the host in the Host header.",
            )
        if not host_allowed(authority, allowed):
            return (
                421,
                ErrorCode.MISDIRECTED_REQUEST,
                f"Host {authority[:200]!r} in the request target is not served here. This "
                "gateway answers to localhost and loopback addresses; add other names to "
                "server.allowed_hosts in config.toml.",
            )
        if header is None or not same_host(scheme, authority, header):
            return (
                400,
                ErrorCode.BAD_REQUEST,
                f"The request target names {authority[:200]!r} but the Host header says "
                f"{(header or '')[:200]!r}; they must agree. Send the path alone (GET /health) "
                "with the host in the Host header.",
            )
        return None
    if not host_allowed(header, allowed):
        return (
            421,
            ErrorCode.MISDIRECTED_REQUEST,
            f"Host {header!r} is not served here. This gateway answers to localhost and "
            "loopback addresses; add other names to server.allowed_hosts in config.toml.",
        )
    return None


# Host headers whose verdict a middleware keeps; past this many it starts again, so headers
# that differ on every request cannot grow it.
MAX_KNOWN_HOSTS = 64


def host_check_middleware(
    extra_names: Iterable[str],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    allowed = frozenset(name.lower() for name in extra_names)
    # The verdict on each Host header, for targets that are a path (the origin form: nearly
    # every request), where it depends on the header alone. A client sends the same header
    # every time, and working it out (the address parsed by ``ipaddress``) took 30-40 us
    # of a request's way to its first byte at one stream (docs/performance.md, "Ninth pass").
    known: dict[str | None, tuple[int, str, str] | None] = {}

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = request.raw_path
        header = request.headers.get("Host")
        if not target.startswith("/"):
            refusal = misdirection(target, header, allowed)
        elif header in known:
            refusal = known[header]
        else:
            refusal = misdirection(target, header, allowed)
            if len(known) >= MAX_KNOWN_HOSTS:
                known.clear()
            known[header] = refusal
        if refusal is not None:
            return json_error(*refusal)
        return await handler(request)

    return check_host
