"""agentspace-gateway migrate [--status]"""

import argparse
import asyncio
from typing import Any

from agentspace_gateway.cli.context import CommandError, load
from agentspace_gateway.storage import (
    Database,
    MigrationError,
    StorageError,
    apply_migrations,
    migration_status,
)
from agentspace_gateway.storage.integrity import quick_check


def register(commands: Any) -> None:
    parser = commands.add_parser("migrate", help="apply database migrations, or list them")
    parser.add_argument(
        "--status", action="store_true", help="list applied and pending migrations; change nothing"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def act() -> int:
        database = await Database.open(
            home.database, busy_timeout_ms=config.database.busy_timeout_ms
        )
        try:
            # Migrating a damaged file would build on what is broken; serve refuses it too.
            damage = await quick_check(database)
            if damage is not None:
                raise StorageError(str(damage))
            if args.status:
                status = await migration_status(database)
                print(f"database: {home.database}")
                for name, applied_at in status.applied:
                    print(f"  applied  {name}  ({applied_at})")
                for name in status.pending:
                    print(f"  pending  {name}")
                for name in status.unknown:
                    print(f"  unknown  {name}  (written by a newer agentspace-gateway)")
                return 1 if status.unknown else 0
            applied = await apply_migrations(database)
            print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
            return 0
        except MigrationError as error:
            raise CommandError(str(error)) from error
        finally:
            await database.close()

    status: int = asyncio.run(act())
    return status
