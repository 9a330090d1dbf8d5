"""agentspace-gateway open [--print]: the console in the browser, logged in.

The running gateway (found through runtime.json) gives a fresh one-time login link to
whoever proves its token, read from the vault here as ``token show`` reads it (audited).
"""

import argparse
import asyncio
import json
import urllib.error
import urllib.request
import webbrowser
from typing import Any

from agentspace_gateway.audited_keys import Actor, AuditEvent
from agentspace_gateway.cli.context import CommandError, load, open_keys
from agentspace_gateway.config import Config
from agentspace_gateway.console_login import CODE_PATH, console_url
from agentspace_gateway.home import Home
from agentspace_gateway.runtime_file import running_gateway
from agentspace_gateway.vault import VaultError

TIMEOUT_SECONDS = 10.0


def register(commands: Any) -> None:
    parser = commands.add_parser("open", help="open the web console in the browser, logged in")
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the one-time login link instead of opening a browser",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    home, config = load(args)
    link = login_link(home, config)
    if args.print_only or not webbrowser.open(link):
        # No browser to open (a server without a desktop): the link is for the user to open.
        print(link)
    else:
        print("opened the console in your browser")
    return 0


def login_link(home: Home, config: Config) -> str:
    running = running_gateway(home.runtime_file)
    if running is None:
        raise CommandError(
            f"no gateway is running for {home.root}; start one with: agentspace-gateway serve"
        )
    token = asyncio.run(_token(home, config))
    base = console_url(running.host, running.port).rstrip("/")
    request = urllib.request.Request(  # noqa: S310 - the gateway's own loopback address
        base + CODE_PATH, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            link: str = json.loads(response.read())["url"]
            return link
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise CommandError(f"the gateway at {base} gave no login link: {message}") from None
    except OSError as error:
        raise CommandError(
            f"the gateway for {home.root} (pid {running.pid}) does not answer at {base} "
            f"({error}); restart it with: agentspace-gateway serve"
        ) from None


async def _token(home: Home, config: Config) -> str:
    try:
        async with open_keys(home, config) as keys:
            token = await asyncio.to_thread(keys.vault.get_token)
            if token is None:
                raise CommandError(f"the vault of {home.root} holds no gateway token yet")
            await keys.record(
                AuditEvent.TOKEN_SHOW,
                Actor.command_line(),
                detail="read by agentspace-gateway open for a console login link",
            )
            return token
    except VaultError as error:
        raise CommandError(
            f"the gateway token could not be read from the vault ({error}); open the console "
            "with the login link agentspace-gateway serve printed when it started"
        ) from None
