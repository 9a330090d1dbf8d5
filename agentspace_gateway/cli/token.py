"""agentspace-gateway token show|rotate: the key server's bearer token."""

import argparse
import asyncio
from typing import Any

from agentspace_gateway.audited_keys import Actor
from agentspace_gateway.cli.context import CommandError, load, open_keys
from agentspace_gateway.vault import VaultError


def register(commands: Any) -> None:
    parser = commands.add_parser("token", help="show or rotate the key server's bearer token")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("show", help="print the token (created if missing)").set_defaults(run=run)
    actions.add_parser("rotate", help="replace the token; the old one stops working").set_defaults(
        run=run
    )


def run(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def act() -> str:
        async with open_keys(home, config) as keys:
            if args.action == "rotate":
                return await keys.rotate_token(Actor.command_line())
            return await keys.show_token(Actor.command_line())

    try:
        token = asyncio.run(act())
    except VaultError as error:
        raise CommandError(str(error)) from None
    print(token)
    return 0
