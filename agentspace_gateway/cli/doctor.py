"""agentspace-gateway doctor [--json]: check what the gateway stands on, one line per check.

Each check is ok, warn or fail, with the next step when it is not ok; the exit status is 1
when any failed. Nothing is written but what opening the database writes (its WAL mode), and
no secret is printed: keys are named, never shown.
"""

import argparse
import asyncio
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

import aiosqlite
import attrs

from agentspace_gateway.cli.context import load
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.providers.registry import ANTHROPIC, Provider, Providers
from agentspace_gateway.runtime_file import read_runtime, running_gateway
from agentspace_gateway.storage import Database, StorageError, migration_status
from agentspace_gateway.storage.failures import (
    StorageProblem,
    free_bytes,
    mount_point,
    storage_problem,
)
from agentspace_gateway.storage.integrity import quick_check
from agentspace_gateway.vault import CredentialVault, VaultError, open_vault

Status = Literal["ok", "warn", "fail"]

# Below this, the next long chat or migration may be the one that fills the disk.
LOW_SPACE_BYTES = 100 * 1024 * 1024
# A provider that does not accept a connection in this long would time a chat out anyway.
CONNECT_TIMEOUT_SECONDS = 2.0
# Doctor waits this long for a lock, not the gateway's busy_timeout: it reports, it does
# not queue behind a writer.
BUSY_TIMEOUT_MS = 1000


@attrs.frozen
class Check:
    name: str
    status: Status
    detail: str
    next_step: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "nextStep": self.next_step,
        }


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the database, free space, vault, keys, providers and a running gateway",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    home, config = load(args)
    checks = asyncio.run(diagnose(home, config))
    failed = any(check.status == "fail" for check in checks)
    if args.json:
        body = {"ok": not failed, "checks": [check.as_json() for check in checks]}
        print(json.dumps(body, indent=2))
    else:
        for check in checks:
            line = f"{check.status:<4}  {check.name:<22} {check.detail}"
            print(line + (f"\n      next: {check.next_step}" if check.next_step else ""))
    return 1 if failed else 0


async def diagnose(home: Home, config: Config) -> list[Check]:
    checks = [await check_database(home), check_free_space(home)]
    vault_check, vault = await check_vault(home, config)
    checks.append(vault_check)
    providers = Providers.of(config)
    checks.extend(await check_keys(providers, vault, config))
    checks.extend(await asyncio.gather(*map(check_reachable, _reached(providers, config))))
    checks.append(check_running(home))
    return checks


async def check_database(home: Home) -> Check:
    path = home.database
    if not path.exists():
        return Check(
            "database",
            "warn",
            f"{path} does not exist yet",
            "Run: agentspace-gateway migrate (serve creates it too).",
        )
    try:
        database = await Database.open(path, busy_timeout_ms=BUSY_TIMEOUT_MS)
    except StorageError as error:
        return _storage_failure(error, home)
    try:
        damage = await quick_check(database)
        if damage is not None:
            return _storage_failure(StorageError(str(damage)), home, damage)
        status = await migration_status(database)
        await database.exclusive(_try_write)
    except (sqlite3.Error, OSError) as error:
        return _storage_failure(error, home)
    finally:
        await database.close()
    applied = f"quick_check ok, writable, {len(status.applied)} migrations applied"
    if status.unknown:
        return Check(
            "database",
            "fail",
            f"{path}: {applied}, {len(status.unknown)} unknown ({', '.join(status.unknown)}): "
            "written by a newer agentspace-gateway",
            "Upgrade agentspace-gateway, or point AGENTSPACE_HOME at another directory.",
        )
    if status.pending:
        return Check(
            "database",
            "warn",
            f"{path}: {applied}, {len(status.pending)} pending ({', '.join(status.pending)})",
            "Run: agentspace-gateway migrate (serve applies them at start too).",
        )
    return Check("database", "ok", f"{path}: {applied}, none pending")


async def _try_write(connection: aiosqlite.Connection) -> None:
    """Take the write lock and let it go: a program holding it shows here, not at the next
    chat. Nothing is written."""
    await connection.execute("BEGIN IMMEDIATE")
    await connection.execute("ROLLBACK")


def _storage_failure(
    error: BaseException, home: Home, problem: StorageProblem | None = None
) -> Check:
    problem = problem or storage_problem(error, home.database)
    if problem is None:
        return Check("database", "fail", str(error), "Run with --debug for the details.")
    # This is doctor: the step that sends a person here is the one already taken.
    step = problem.next_step.replace("Run: agentspace-gateway doctor. Then, with", "With")
    return Check("database", "fail", problem.message, step)


def check_free_space(home: Home) -> Check:
    free = free_bytes(home.root)
    where = f"{free:,} bytes free on {mount_point(home.root)} (holding {home.root})"
    if free < LOW_SPACE_BYTES:
        return Check(
            "free space",
            "fail" if free == 0 else "warn",
            where,
            f"Free space on {mount_point(home.root)}: under {LOW_SPACE_BYTES // 2**20} MB, "
            "a long chat or a migration may fill it (nothing acknowledged is lost, but "
            "new requests fail).",
        )
    return Check("free space", "ok", where)


async def check_vault(home: Home, config: Config) -> tuple[Check, CredentialVault | None]:
    try:
        vault = await asyncio.to_thread(open_vault, config.vault.backend, home.root)
        # Reading the stored names decrypts the file: a wrong passphrase shows here.
        stored = await asyncio.to_thread(vault.stored_providers)
    except VaultError as error:
        step = "Keys can still come from the environment (ANTHROPIC_API_KEY) meanwhile."
        return Check("vault", "warn", str(error), step), None
    names = ", ".join(stored) if stored else "no provider keys"
    return Check("vault", "ok", f"backend {vault.backend_name}, holds {names}"), vault


async def check_keys(
    providers: Providers, vault: CredentialVault | None, config: Config
) -> list[Check]:
    checks = []
    for provider in providers.by_name.values():
        if provider.keyless:
            continue
        found = [source for source in provider.key_sources if await _has_key(source, vault)]
        name = f"key {provider.name}"
        if found:
            checks.append(Check(name, "ok", f"from {found[0]}"))
        elif _in_use(provider, config):
            add = f"agentspace-gateway keys add {provider.name}"
            checks.append(
                Check(name, "warn", f"none in {', '.join(provider.key_sources)}", f"Run: {add}")
            )
        else:
            checks.append(Check(name, "ok", "not set (the provider is not configured)"))
    return checks


async def _has_key(source: str, vault: CredentialVault | None) -> bool:
    kind, _, name = source.partition(":")
    if kind == "env":
        return bool(os.environ.get(name, "").strip())
    if kind == "vault" and vault is not None:
        try:
            return await asyncio.to_thread(vault.get_key, name) is not None
        except VaultError:
            return False
    return False


def _in_use(provider: Provider, config: Config) -> bool:
    # Chat's own provider, and every one the config names; a built-in nobody set up is idle.
    return provider.name == ANTHROPIC or provider.name in config.providers


def _reached(providers: Providers, config: Config) -> Iterator[tuple[str, str]]:
    for provider in providers.by_name.values():
        if not _in_use(provider, config):
            continue
        url = provider.base_url
        if provider.name == ANTHROPIC:
            url = config.anthropic.base_url or os.environ.get("ANTHROPIC_BASE_URL") or url
        yield provider.name, url


async def check_reachable(named: tuple[str, str]) -> Check:
    """A TCP connection to the provider's host and port: enough to tell a network that does
    not reach it from one that does, without spending a request."""
    name, url = named
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, ValueError) as error:
        reason = "no answer in 2 s" if isinstance(error, TimeoutError) else str(error) or "?"
        return Check(
            f"reach {name}",
            "warn",
            f"{url}: not reachable ({reason})",
            "Chats through it will fail until it is: check the network, a proxy, or the "
            "base_url in config.toml.",
        )
    writer.close()
    await writer.wait_closed()
    return Check(f"reach {name}", "ok", f"{url}: accepts connections")


def check_running(home: Home) -> Check:
    info = running_gateway(home.runtime_file)
    if info is not None:
        return Check("gateway", "ok", f"serving on {info.url} (pid {info.pid})")
    if read_runtime(home.runtime_file) is not None:
        return Check(
            "gateway",
            "ok",
            f"not running ({home.runtime_file} is left from a stopped one; serve replaces it)",
        )
    return Check("gateway", "ok", "not running")
