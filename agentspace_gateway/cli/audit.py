"""agentspace-gateway audit [--limit N] [--provider P] [--json]"""

import argparse
import asyncio
import json
from typing import Any

from attrs import asdict

from agentspace_gateway.cli.arguments import positive_int
from agentspace_gateway.cli.context import CommandError, load, open_database
from agentspace_gateway.client.tables import table
from agentspace_gateway.storage import AuditEntry, AuditLog


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help="show the audit log of key operations")
    parser.add_argument("--limit", type=positive_int, default=50, help="rows to show (default 50)")
    parser.add_argument("--provider", help="only rows about this provider")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def fetch() -> list[AuditEntry]:
        async with open_database(home, config) as database:
            return await AuditLog(database).recent(limit=args.limit, provider=args.provider)

    try:
        entries = asyncio.run(fetch())
    except OSError as error:
        raise CommandError(f"cannot read the audit log: {error}") from None
    if args.json:
        for entry in entries:
            print(json.dumps(asdict(entry), sort_keys=True))
        return 0
    if not entries:
        print("no audit entries")
        return 0
    headers = ("time", "event", "provider", "remote", "user agent / detail")
    rows = [
        [
            entry.created_at,
            entry.event,
            entry.provider or "-",
            entry.remote_addr or "-",
            " / ".join(part for part in (entry.user_agent, entry.detail) if part),
        ]
        for entry in entries
    ]
    # Columns fit what this page holds (event names such as access.rate_limited, IPv6
    # addresses), so nothing spills into its neighbour.
    for line in table(headers, [[_printable(cell) for cell in row] for row in rows]):
        print(line)
    return 0


def _printable(text: str) -> str:
    """A cell as it may reach a terminal: a user agent or provider name comes from whoever
    called the key server, and a control character there could rewrite the screen."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
