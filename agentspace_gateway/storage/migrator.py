"""Numbered SQL files applied in order, each recorded by name in ``schema_migrations``.

An applied file is never edited or renumbered: a schema change is a new file. A database
that records a migration this code does not know was written by a newer release, and is
refused before anything is written to it.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import sqlite3
from importlib.resources.abc import Traversable
from typing import NamedTuple

import aiosqlite
import attrs

from agentspace_gateway.clock import utc_now_iso
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.errors import MigrationError
from agentspace_gateway.storage.failures import storage_problem

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "agentspace_gateway.migrations"
_NAME = r"\d{4}_[a-z0-9_]+"
_FILE_NAME = re.compile(_NAME + r"\.sql")

_CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT NOT NULL PRIMARY KEY,
    applied_at TEXT NOT NULL
) STRICT
"""


@attrs.frozen
class Migration:
    # The file name without ".sql", e.g. "0001_initial"; the pattern makes it safe to inline.
    name: str = attrs.field(validator=attrs.validators.matches_re(_NAME))
    sql: str


class AppliedMigration(NamedTuple):
    name: str
    applied_at: str


@attrs.frozen
class MigrationStatus:
    applied: list[AppliedMigration]
    pending: list[str]
    unknown: list[str]  # applied by a newer release: this code cannot run on that database


def available_migrations(source: Traversable | None = None) -> list[Migration]:
    """The ``NNNN_name.sql`` files shipped in ``agentspace_gateway.migrations``, in order."""
    directory = source or importlib.resources.files(MIGRATIONS_PACKAGE)
    files = sorted(
        (entry for entry in directory.iterdir() if _FILE_NAME.fullmatch(entry.name)),
        key=lambda entry: entry.name,
    )
    owners: dict[str, str] = {}
    migrations = []
    for entry in files:
        number = entry.name[:4]
        if number in owners:
            raise MigrationError(
                f"Migrations {owners[number]} and {entry.name} share the number {number}. "
                "Give the newer one the next free number."
            )
        owners[number] = entry.name
        migrations.append(
            Migration(name=entry.name.removesuffix(".sql"), sql=entry.read_text("utf-8"))
        )
    return migrations


async def migration_status(db: Database) -> MigrationStatus:
    """What is applied, pending and unknown. Reads only: a blank database stays blank."""
    applied = await _applied(db)
    known = [migration.name for migration in available_migrations()]
    applied_names = {migration.name for migration in applied}
    return MigrationStatus(
        applied=applied,
        pending=[name for name in known if name not in applied_names],
        unknown=[migration.name for migration in applied if migration.name not in known],
    )


async def apply_migrations(db: Database) -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names."""
    migrations = available_migrations()
    known = {migration.name for migration in migrations}

    async def migrate(connection: aiosqlite.Connection) -> list[str]:
        applied = {row["name"] for row in await _read_applied(connection)}
        unknown = sorted(applied - known)
        if unknown:
            raise MigrationError(
                f"The database {db.path} was written by a newer agentspace-gateway "
                f"(unknown migrations: {', '.join(unknown)}). Upgrade agentspace-gateway, "
                "or point AGENTSPACE_HOME at another directory."
            )
        pending = [migration for migration in migrations if migration.name not in applied]
        if not pending:
            return []
        await connection.execute(_CREATE_SCHEMA_MIGRATIONS)
        for migration in pending:
            await _apply_one(connection, db, migration)
            log.info("Applied migration %s to %s", migration.name, db.path)
        return [migration.name for migration in pending]

    # Alone, outside any transaction: executescript commits whatever transaction is open.
    return await db.exclusive(migrate)


async def _apply_one(connection: aiosqlite.Connection, db: Database, migration: Migration) -> None:
    # executescript commits any open transaction before it runs, so BEGIN and COMMIT travel
    # inside the script, with the record row, and the file and its record land together.
    # The name matched _NAME and the timestamp is digits and punctuation: safe to inline.
    values = f"('{migration.name}', '{utc_now_iso()}')"
    record = f"INSERT INTO schema_migrations (name, applied_at) VALUES {values}"  # noqa: S608
    script = f"BEGIN IMMEDIATE;\n{migration.sql}\n;{record};\nCOMMIT;"
    try:
        await connection.executescript(script)
    except sqlite3.Error as error:
        await _rollback_quietly(connection)
        problem = storage_problem(error, db.path)
        if problem is not None:  # the machine's state, not the migration's
            raise MigrationError(
                f"Migration {migration.name}.sql was not applied (nothing from it was "
                f"kept): {problem}"
            ) from error
        raise MigrationError(
            f"Migration {migration.name}.sql failed on {db.path}: {error}. "
            "Nothing from it was kept; the database is at the previous migration."
        ) from error
    if connection.in_transaction:
        # An unterminated /* comment swallows the INSERT and the COMMIT without an error.
        await _rollback_quietly(connection)
        raise MigrationError(
            f"Migration {migration.name}.sql did not run to its end on {db.path} "
            "(an unterminated comment?). Nothing from it was kept."
        )


async def _rollback_quietly(connection: aiosqlite.Connection) -> None:
    try:
        if connection.in_transaction:
            await connection.execute("ROLLBACK")
    except sqlite3.Error:
        log.warning("ROLLBACK failed", exc_info=True)


async def _applied(db: Database) -> list[AppliedMigration]:
    rows = await db.exclusive(_read_applied)
    return [AppliedMigration(row["name"], row["applied_at"]) for row in rows]


async def _read_applied(connection: aiosqlite.Connection) -> list[sqlite3.Row]:
    exists = await connection.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    if not exists:
        return []
    return list(
        await connection.execute_fetchall(
            "SELECT name, applied_at FROM schema_migrations ORDER BY name"
        )
    )
