"""agentspace-gateway sessions [--json] [--url URL]: every session, most recently active first."""

import argparse
import json
from typing import TYPE_CHECKING, Any

from agentspace_gateway.client.command import add_url_option, run_against_gateway

if TYPE_CHECKING:
    from agentspace_gateway.client.connection import GatewayConnection


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sessions", help="list the sessions, with model and message count, from the running gateway"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per session per line")
    add_url_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_against_gateway(args, lambda connection: _list(connection, args))


async def _list(connection: "GatewayConnection", args: argparse.Namespace) -> int:
    from agentspace_gateway.client.reports import sessions_report

    listing = await connection.request("session.list")
    if args.json:
        for session in listing.get("sessions") or []:
            print(json.dumps(session, ensure_ascii=False))
        return 0
    print("\n".join(sessions_report(listing.data)))
    return 0
