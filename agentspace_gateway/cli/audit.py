"""agentspace-gateway audit [--limit N] [--provider P] [--json]"""

import argparse
import asyncio
import json
from typing import Any

from attrs import asdict

from agentspace_gateway.cli.context import CommandError, load, open_database
from agentspace_gateway.storage import AuditEntry, AuditLog


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help="show the audit log of key operations")
    parser.add_argument("--limit", type=_positive_int, default=50, help="rows to show (default 50)")
    parser.add_argument("--provider", help="only rows about this provider")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


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
    print(f"{'time':<24}  {'event':<16}  {'provider':<10}  {'remote':<15}  user agent / detail")
    for entry in entries:
        who = " / ".join(part for part in (entry.user_agent, entry.detail) if part)
        print(
            f"{entry.created_at:<24}  {entry.event:<16}  {entry.provider or '-':<10}  "
            f"{entry.remote_addr or '-':<15}  {who}"
        )
    return 0
