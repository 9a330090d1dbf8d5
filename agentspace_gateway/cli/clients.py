"""agentspace-gateway clients add NAME [--expires DATE] | list | revoke NAME

Client keys let tools speak Anthropic's HTTP API to the gateway (docs/claude-code.md). A new
key is printed once; only its hash is stored, so a lost key is revoked and issued again.
"""

import argparse
import asyncio
from datetime import UTC, date, datetime
from typing import Any

from agentspace_gateway.audited_keys import Actor
from agentspace_gateway.cli.context import CommandError, load, open_database
from agentspace_gateway.client.tables import table
from agentspace_gateway.client_auth.audit_events import ClientEvent
from agentspace_gateway.clock import format_utc, utc_now_iso
from agentspace_gateway.pricing import usd_text
from agentspace_gateway.storage import AuditLog
from agentspace_gateway.storage.client_keys import (
    ClientKey,
    ClientKeyError,
    ClientKeyRepository,
    IssuedKey,
)


def register(commands: Any) -> None:
    parser = commands.add_parser("clients", help="manage client keys for the HTTP API")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="issue a key (printed once)")
    add.add_argument("name", help="1 to 64 characters of A-Z a-z 0-9 _ -")
    add.add_argument(
        "--expires",
        type=expiry,
        help="when the key stops working: YYYY-MM-DD (00:00 UTC) or an ISO 8601 time",
    )
    add.set_defaults(run=run_add)
    actions.add_parser("list", help="every key, live or not (never the key)").set_defaults(
        run=run_list
    )
    revoke = actions.add_parser("revoke", help="stop a key at once (open streams are closed)")
    revoke.add_argument("name")
    revoke.set_defaults(run=run_revoke)


def expiry(text: str) -> str:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"
        ) from None
    return format_utc(moment)


def run_add(args: argparse.Namespace) -> int:
    home, config = load(args)
    if args.expires is not None and args.expires <= utc_now_iso():
        raise CommandError(f"--expires {args.expires} is already past", status=2)

    async def issue() -> IssuedKey:
        async with open_database(home, config) as database:
            issued = await ClientKeyRepository(database).issue(args.name, expires_at=args.expires)
            await _audit(database, ClientEvent.ADD, issued.client)
            return issued

    issued = _run(issue())
    print(issued.secret)
    expires = f", expires {issued.client.expires_at}" if issued.client.expires_at else ""
    print(f"(client {issued.client.name}{expires}; shown once, only its hash is kept)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def listing() -> tuple[list[ClientKey], dict[int, tuple[int, int]]]:
        async with open_database(home, config) as database:
            repository = ClientKeyRepository(database)
            return await repository.list_all(), await repository.spend()

    clients, spend = _run(listing())
    if not clients:
        print("no client keys (issue one with: agentspace-gateway clients add NAME)")
        return 0
    now = utc_now_iso()
    rows = [
        [
            client.name,
            client.key_prefix + "…",
            client.created_at,
            client.expires_at or "-",
            _state(client, now),
            str(spend.get(client.id, (0, 0))[0]),
            "$" + usd_text(spend.get(client.id, (0, 0))[1]),
        ]
        for client in clients
    ]
    headers = ("name", "key", "created", "expires", "state", "requests", "cost")
    for line in table(headers, rows, right=(5, 6)):
        print(line)
    return 0


def _state(client: ClientKey, now: str) -> str:
    if client.revoked_at is not None:
        return f"revoked {client.revoked_at}"
    return "live" if client.usable_at(now) else "expired"


def run_revoke(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def revoke() -> ClientKey:
        async with open_database(home, config) as database:
            client = await ClientKeyRepository(database).revoke(args.name)
            await _audit(database, ClientEvent.REVOKE, client)
            return client

    client = _run(revoke())
    print(f"client {client.name} revoked; a running gateway refuses it from its next request")
    return 0


async def _audit(database: Any, event: ClientEvent, client: ClientKey) -> None:
    actor = Actor.command_line()
    await AuditLog(database).record(
        event.value,
        remote_addr=actor.remote_addr,
        user_agent=actor.user_agent,
        detail=f"client {client.name} ({client.key_prefix}…); {actor.detail}",
    )


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except ClientKeyError as error:
        raise CommandError(str(error), status=2) from None
