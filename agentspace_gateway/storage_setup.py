"""The database for the running gateway: opened, migrated, and closed with the app."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.storage import AuditLog, Database, apply_migrations

log = logging.getLogger(__name__)


async def open_database(app: web.Application) -> AsyncIterator[None]:
    home, config = app[appkeys.HOME], app[appkeys.CONFIG]
    database = await Database.open(home.database, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        applied = await apply_migrations(database)
        if applied:
            log.info("applied migrations to %s: %s", home.database, ", ".join(applied))
        app[appkeys.DATABASE] = database
        app[appkeys.AUDIT_LOG] = AuditLog(database)
        yield
    finally:
        await database.close()


def setup_storage(app: web.Application) -> None:
    app.cleanup_ctx.append(open_database)
