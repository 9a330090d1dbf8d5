"""The database for the running gateway: opened, migrated, and closed with the app."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.storage import (
    AuditLog,
    Database,
    MessageRepository,
    SessionRepository,
    UsageLedger,
    apply_migrations,
)
from agentspace_gateway.storage.errors import StorageError
from agentspace_gateway.storage.integrity import quick_check
from agentspace_gateway.storage.session_origins import SessionOrigins

log = logging.getLogger(__name__)


async def open_database(app: web.Application) -> AsyncIterator[None]:
    home, config = app[appkeys.HOME], app[appkeys.CONFIG]
    database = await Database.open(home.database, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        # A damaged file refuses to start, rather than serve with /health "ok" and fail on
        # the first write that reaches the damaged page (or, worse, bill on top of it).
        damage = await quick_check(database)
        if damage is not None:
            raise StorageError(str(damage))
        await apply_migrations(database)
        ledger = UsageLedger(database)
        interrupted = await ledger.close_interrupted()
        if interrupted:
            log.warning(
                "%d request(s) were still streaming when the gateway last stopped; their "
                "usage is kept as reported by then, marked interrupted",
                interrupted,
            )
        app[appkeys.DATABASE] = database
        app[appkeys.AUDIT_LOG] = AuditLog(database)
        app[appkeys.SESSIONS] = SessionRepository(database)
        app[appkeys.MESSAGES] = MessageRepository(database)
        app[appkeys.USAGE_LEDGER] = ledger
        app[appkeys.SESSION_ORIGINS] = SessionOrigins(database)
        yield
    finally:
        await database.close()


def setup_storage(app: web.Application) -> None:
    app.cleanup_ctx.append(open_database)
