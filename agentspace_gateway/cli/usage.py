"""agentspace-gateway usage [--session ID] [--since T] [--until T] [--json] [--url URL]"""

import argparse
import json
from typing import TYPE_CHECKING, Any

from agentspace_gateway.client.command import add_url_option, run_against_gateway

if TYPE_CHECKING:
    from agentspace_gateway.client.connection import GatewayConnection


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "usage", help="tokens, cost and requests per model, from the running gateway"
    )
    parser.add_argument("--session", help="only this session (its id or full key)")
    parser.add_argument("--since", help="usage at or after this ISO 8601 time (UTC if no offset)")
    parser.add_argument("--until", help="usage before this ISO 8601 time")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_url_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_against_gateway(args, lambda connection: _report(connection, args))


async def _report(connection: "GatewayConnection", args: argparse.Namespace) -> int:
    from agentspace_gateway.client.reports import usage_report

    report = await connection.request(
        "usage.query", sessionId=args.session, since=args.since, until=args.until
    )
    if args.json:
        body = {key: value for key, value in report.data.items() if key not in _ENVELOPE}
        print(json.dumps(body, ensure_ascii=False))
        return 0
    scope = [
        f"{name} {value}"
        for name, value in (("session", args.session), ("since", args.since), ("until", args.until))
        if value is not None
    ]
    if scope:
        print(f"usage of {', '.join(scope)}:")
    print("\n".join(usage_report(report.data)))
    return 0


_ENVELOPE = ("type", "requestId")
