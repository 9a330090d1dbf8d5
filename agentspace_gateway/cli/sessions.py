"""agentspace-gateway sessions [--limit N] [--json] [--url URL]: the sessions, most recently
active first: all of them, or the first N."""

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from agentspace_gateway.cli.arguments import positive_int
from agentspace_gateway.client.command import add_url_option, run_against_gateway
from agentspace_gateway.protocol.session_messages import SESSION_PAGE_MAX

if TYPE_CHECKING:
    from agentspace_gateway.client.connection import GatewayConnection


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sessions", help="list the sessions, with model and message count, from the running gateway"
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="only the N most recently active sessions (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per session per line")
    add_url_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_against_gateway(args, lambda connection: list_sessions(connection, args))


async def list_sessions(connection: "GatewayConnection", args: argparse.Namespace) -> int:
    from agentspace_gateway.client.reports import sessions_report

    if args.limit is None:
        # One request: every session as of one moment, and it works with any gateway version.
        listing = await connection.request("session.list")
        sessions, more = listing.get("sessions") or [], False
    else:
        sessions, more = await _first(connection, args.limit)
    if args.json:
        for session in sessions:
            print(json.dumps(session, ensure_ascii=False))
    else:
        print("\n".join(sessions_report({"sessions": sessions})))
    if more:
        # On stderr, so --json output stays one session per line.
        print(
            f"(the {len(sessions):,} most recently active sessions; there are more: "
            "raise --limit, or leave it out for all)",
            file=sys.stderr,
        )
    return 0


async def _first(connection: "GatewayConnection", wanted: int) -> tuple[list[Any], bool]:
    """The ``wanted`` most recently active sessions, a page at a time, and whether more follow."""
    sessions: list[Any] = []
    after = None
    while True:
        page = await connection.request(
            "session.list", limit=min(wanted - len(sessions), SESSION_PAGE_MAX), after=after
        )
        sessions.extend(page.get("sessions") or [])
        after = page.get("nextAfter")
        if after is None or len(sessions) >= wanted:
            return sessions, after is not None
