"""A client on the gateway's own machine: it finds the gateway through the data home and,
when the gateway wants its token, reads it from the vault as ``token show`` does, audited.

Where to connect: ``--url``, else the host and port the running gateway wrote to
runtime.json, else ``server.host`` and ``server.port`` from the configuration
(ws://127.0.0.1:3271 by default).

With AGENTSPACE_CLIENT_KEY set, the client presents that client key instead of reading the
vault (a machine with no passphrase or keychain, or a user who should see one client's
sessions only): the gateway then shows it that client's sessions and usage alone.
"""

import asyncio
import os

from attrs import frozen
from yarl import URL

from agentspace_gateway.audited_keys import Actor, AuditEvent
from agentspace_gateway.client.connection import GatewayConnection
from agentspace_gateway.client.errors import ClientError, GatewayUnreachable, TokenRequired
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.host_check import is_loopback_name
from agentspace_gateway.runtime_file import running_gateway

GATEWAY_PATH = "/gateway"
CLIENT_KEY_ENV = "AGENTSPACE_CLIENT_KEY"
# A gateway listening on every address is reached here through loopback.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


@frozen
class Target:
    url: str
    home: Home
    pid: int | None  # from runtime.json; None when --url or the configuration chose the URL
    given: bool  # --url
    token_expected: bool

    def unreachable(self, problem: str) -> str:
        if self.given:
            return (
                f"no gateway answers at {self.url} ({problem}); check --url, or start one "
                "with: agentspace-gateway serve"
            )
        if self.pid is not None:
            return (
                f"the gateway for {self.home.root} (pid {self.pid}) does not answer at "
                f"{self.url} ({problem}); if it is still starting, try again in a moment, "
                "else restart it with: agentspace-gateway serve"
            )
        return (
            f"no gateway is running for {self.home.root}; start one with: agentspace-gateway serve"
        )


def find_gateway(home: Home, config: Config, url: str | None = None) -> Target:
    token_expected = config.gateway.require_token or config.server.allow_remote
    if url is not None:
        return Target(websocket_url(url), home, None, True, token_expected)
    running = running_gateway(home.runtime_file)
    if running is not None:
        host, port, pid = running.host, running.port, running.pid
        # Bound off loopback means --allow-remote, which always requires the token.
        token_expected = token_expected or not _loopback(host)
    else:
        host, port, pid = config.server.host, config.server.port, None
    host = _WILDCARDS.get(host, host)
    authority = f"[{host}]" if ":" in host else host
    return Target(f"ws://{authority}:{port}{GATEWAY_PATH}", home, pid, False, token_expected)


def websocket_url(text: str) -> str:
    """Accept ws://, wss://, http:// or https://, with or without the /gateway path."""
    try:
        url = URL(text.strip())
    except ValueError:
        url = URL()
    schemes = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
    if url.scheme not in schemes or not url.host:
        raise ClientError(
            f"--url {text!r} is not a gateway URL; write it as ws://127.0.0.1:3271/gateway",
            status=2,
        )
    url = url.with_scheme(schemes[url.scheme])
    if url.path in ("", "/"):
        url = url.with_path(GATEWAY_PATH)
    return str(url)


async def connect(home: Home, config: Config, url: str | None = None) -> GatewayConnection:
    target = find_gateway(home, config, url)
    client_key = os.environ.get(CLIENT_KEY_ENV, "").strip()
    if client_key:
        try:
            return await GatewayConnection.open(target.url, client_key)
        except GatewayUnreachable as error:
            raise GatewayUnreachable(target.unreachable(str(error))) from None
        except TokenRequired:
            raise ClientError(
                f"the gateway at {target.url} refused the client key in {CLIENT_KEY_ENV} "
                "(revoked, expired or unknown); see: agentspace-gateway clients list"
            ) from None
    token = await read_token(home, config, target) if target.token_expected else None
    try:
        return await GatewayConnection.open(target.url, token)
    except GatewayUnreachable as error:
        raise GatewayUnreachable(target.unreachable(str(error))) from None
    except TokenRequired:
        if token is not None:
            raise
    token = await read_token(home, config, target)
    return await GatewayConnection.open(target.url, token)


async def read_token(home: Home, config: Config, target: Target) -> str:
    # Imported here: the vault and database matter only to a gateway that wants a token.
    from agentspace_gateway.cli.context import CommandError, open_keys
    from agentspace_gateway.vault import VaultError

    wanted = f"the gateway at {target.url} requires its token"
    try:
        async with open_keys(home, config) as keys:
            token = await asyncio.to_thread(keys.vault.get_token)
            if token is None:
                raise ClientError(
                    f"{wanted}, but the vault of {home.root} holds none. Run the client with "
                    "the same AGENTSPACE_HOME as the gateway, or see the token with: "
                    "agentspace-gateway token show"
                )
            await keys.record(
                AuditEvent.TOKEN_SHOW,
                Actor.command_line(),
                detail="read by the terminal client to connect to the gateway",
            )
            return token
    except (CommandError, VaultError) as error:
        raise ClientError(
            f"{wanted}, and it could not be read from the vault: {error}. Or connect with a "
            f"client key: set {CLIENT_KEY_ENV} to the key that agentspace-gateway clients add NAME "
            "printed"
        ) from None


def _loopback(host: str) -> bool:
    host = host.strip("[]")
    return host not in _WILDCARDS and is_loopback_name(host)
