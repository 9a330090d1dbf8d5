"""The credential vault for the running gateway.

A machine with no keychain and no passphrase still runs the gateway: the vault is reported
unavailable (``/health``, 503 on ``/keys``) and chat can use ANTHROPIC_API_KEY instead.
"""

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.audited_keys import Actor, AuditedKeys
from agentspace_gateway.vault import VaultError, open_vault

log = logging.getLogger(__name__)

STARTUP_ACTOR = Actor(None, "agentspace-gateway", "first start of the key server")


async def open_credentials(app: web.Application) -> AsyncIterator[None]:
    home, config = app[appkeys.HOME], app[appkeys.CONFIG]
    try:
        vault = await asyncio.to_thread(open_vault, config.vault.backend, home.root)
        keys = AuditedKeys(vault, app[appkeys.AUDIT_LOG])
        await keys.ensure_token(STARTUP_ACTOR)
    except VaultError as error:
        log.warning("credential vault unavailable: %s", error)
        app[appkeys.VAULT] = appkeys.VaultState(None, None, str(error))
    else:
        log.info("credential vault: %s", vault.backend_name)
        app[appkeys.VAULT] = appkeys.VaultState(keys, vault.backend_name, None)
    yield


def setup_vault(app: web.Application) -> None:
    app.cleanup_ctx.append(open_credentials)
