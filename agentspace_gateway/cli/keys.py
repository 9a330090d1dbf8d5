"""agentspace-gateway keys add|update|remove|list

A key is read from the terminal without echo, or from standard input when piped; never from
the command line, where other users could read it in the process list.
"""

import argparse
import asyncio
import getpass
import sys
from typing import Any

from agentspace_gateway.audited_keys import Actor
from agentspace_gateway.cli.context import CommandError, load, open_keys
from agentspace_gateway.vault import PROVIDERS, VaultError, check_provider


def register(commands: Any) -> None:
    parser = commands.add_parser("keys", help="manage provider API keys in the vault")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("add", "store a new key"), ("update", "replace a stored key")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("provider", help=f"one of: {', '.join(PROVIDERS)}")
        sub.set_defaults(run=run_store)
    remove = actions.add_parser("remove", help="delete a stored key")
    remove.add_argument("provider", help=f"one of: {', '.join(PROVIDERS)}")
    remove.set_defaults(run=run_remove)
    listing = actions.add_parser("list", help="which providers have a key (never the key)")
    listing.set_defaults(run=run_list)


def _provider(args: argparse.Namespace) -> str:
    try:
        return check_provider(args.provider)
    except VaultError as error:
        raise CommandError(str(error), status=2) from None


def read_key(provider: str) -> str:
    if sys.stdin.isatty():
        key = getpass.getpass(f"{provider} API key (input hidden): ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise CommandError("no key given: type it at the prompt or pipe it on standard input", 2)
    return key


def run_store(args: argparse.Namespace) -> int:
    provider = _provider(args)
    home, config = load(args)
    key = read_key(provider)

    async def store() -> None:
        async with open_keys(home, config) as keys:
            if args.action == "add":
                await keys.add(provider, key, Actor.command_line())
            else:
                await keys.update(provider, key, Actor.command_line())

    _run(store())
    verb = "stored" if args.action == "add" else "updated"
    print(f"{provider} key {verb}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    provider = _provider(args)
    home, config = load(args)

    async def remove() -> None:
        async with open_keys(home, config) as keys:
            await keys.remove(provider, Actor.command_line())

    _run(remove())
    print(f"{provider} key removed")
    return 0


def run_list(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def listing() -> tuple[str, list[tuple[str, str | None]]]:
        async with open_keys(home, config) as keys:
            vault = keys.vault
            rows = [(provider, vault.key_fingerprint(provider)) for provider in PROVIDERS]
            return vault.backend_name, rows

    backend, rows = _run(listing())
    print(f"vault backend: {backend}")
    width = max(len(provider) for provider, _ in rows)
    for provider, fingerprint in rows:
        print(f"  {provider:<{width}}  {'stored  ' + fingerprint if fingerprint else 'not set'}")
    return 0


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except VaultError as error:
        raise CommandError(str(error)) from None
