"""Who may open the WebSocket, decided before the upgrade.

The Host check (DNS rebinding) runs in the app middleware. Here: the peer must be on
loopback unless the server was started with --allow-remote; a browser's Origin must be the
gateway's own or explicitly allowed, which stops any page the user has open from driving
the gateway (cross-site WebSocket hijacking); and the bearer token when one is required.
"""

import ipaddress

from aiohttp import web
from attrs import frozen

from agentspace_gateway.config import Config
from agentspace_gateway.protocol.errors import ErrorCode


@frozen
class Refusal:
    status: int
    code: str
    message: str


def peer_is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def own_origins(request: web.Request) -> set[str]:
    """The origins of pages this gateway serves itself, on the port this request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return set()
    port = sockname[1]
    return {f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"}


def token_required(config: Config) -> bool:
    # Off loopback, nothing else stands between a network peer and the gateway.
    return config.gateway.require_token or config.server.allow_remote


def check_access(request: web.Request, config: Config) -> Refusal | None:
    if not config.server.allow_remote and not peer_is_loopback(request):
        return Refusal(
            403,
            ErrorCode.FORBIDDEN,
            "The gateway accepts WebSocket connections from this machine only. "
            "Start it with --allow-remote (a token is then required) to accept others.",
        )
    origin = request.headers.get("Origin")
    if origin is not None:
        allowed = own_origins(request) | set(config.gateway.allowed_origins)
        if origin not in allowed:
            return Refusal(
                403,
                ErrorCode.ORIGIN_NOT_ALLOWED,
                f"Origin {origin[:200]!r} may not open the gateway. Pages served by the gateway "
                "itself may; add other origins to gateway.allowed_origins in config.toml.",
            )
    return None
