"""What every command needs: the home, the configuration, and for some the vault and database."""

import argparse
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agentspace_gateway.audited_keys import AuditedKeys
from agentspace_gateway.config import Config
from agentspace_gateway.config_loading import Sources, load_config
from agentspace_gateway.home import Home
from agentspace_gateway.logging_setup import configure_logging
from agentspace_gateway.storage import AuditLog, Database, MigrationError, apply_migrations
from agentspace_gateway.vault import VaultError, open_vault


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def load(
    args: argparse.Namespace,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    override_sources: Sources | None = None,
    *,
    serving: bool = False,
) -> tuple[Home, Config]:
    home = Home.locate(args.home).ensure()
    config = load_config(home.config_file, overrides=overrides, override_sources=override_sources)
    level = config.logging.level
    if not serving and level == "INFO":
        # A one-shot command prints its own result; routine progress lines would only bury it.
        level = "WARNING"
    if getattr(args, "debug", False):
        level = "DEBUG"
    configure_logging(level, access_log=config.logging.access_log)
    return home, config


@contextlib.asynccontextmanager
async def open_database(home: Home, config: Config) -> AsyncIterator[Database]:
    database = await Database.open(home.database, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        try:
            await apply_migrations(database)
        except MigrationError as error:
            raise CommandError(str(error)) from None
        yield database
    finally:
        await database.close()


@contextlib.asynccontextmanager
async def open_keys(home: Home, config: Config) -> AsyncIterator[AuditedKeys]:
    async with open_database(home, config) as database:
        try:
            vault = open_vault(config.vault.backend, home.root)
        except VaultError as error:
            raise CommandError(str(error)) from None
        yield AuditedKeys(vault, AuditLog(database))
