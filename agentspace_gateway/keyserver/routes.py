"""GET /health and GET /keys/{provider}."""

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import __version__, appkeys
from agentspace_gateway.audited_keys import Actor, AuditEvent
from agentspace_gateway.failed_auth import FailedAuthLimiter, write_pending_summary
from agentspace_gateway.first_run import key_hint, key_sources
from agentspace_gateway.gateway.keys import REGISTRY
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.storage.errors import StorageError
from agentspace_gateway.token_check import token_refusal
from agentspace_gateway.vault import PROVIDERS

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}


async def health(request: web.Request) -> web.Response:
    app = request.app
    vault = app[appkeys.VAULT]
    sources, vault_problem = await key_sources(vault)
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "uptimeSeconds": round(time.monotonic() - app[appkeys.STARTED_AT], 3),
            "vault": "available" if vault.available else "unavailable",
            "vaultBackend": vault.backend,
            "vaultProblem": vault_problem or vault.problem,
            "providerKeys": sources,
            "keyHint": key_hint(vault, sources),
            "handlers": sorted(app[REGISTRY].by_type),
            "pluginErrors": [
                {"plugin": failure.owner, "reason": failure.reason}
                for failure in app[REGISTRY].failures
            ],
        }
    )


def _actor(request: web.Request) -> Actor:
    return Actor(request.remote, request.headers.get("User-Agent"))


async def get_key(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    actor = _actor(request)
    state = request.app[appkeys.VAULT]
    if state.keys is None:
        await request.app[appkeys.AUDIT_LOG].record(
            AuditEvent.KEY_UNAVAILABLE.value,
            provider=provider[:64],
            remote_addr=actor.remote_addr,
            user_agent=actor.user_agent,
        )
        return json_error(
            503,
            ErrorCode.VAULT_UNAVAILABLE,
            state.problem or "The credential vault is unavailable.",
        )
    keys = state.keys

    refused = await token_refusal(
        request,
        keys,
        actor,
        where=f"GET /keys/{provider[:64]}",
        hint="Send 'Authorization: Bearer <token>'; see it with: agentspace-gateway token show",
        provider=provider[:64],
    )
    if refused is not None:
        return refused

    if provider not in PROVIDERS:
        await keys.record(
            AuditEvent.KEY_NOT_FOUND, actor, provider=provider[:64], detail="unknown provider"
        )
        return json_error(
            404,
            ErrorCode.UNKNOWN_PROVIDER,
            f"Unknown provider {provider!r}. Valid providers: {', '.join(PROVIDERS)}.",
            validProviders=list(PROVIDERS),
        )

    key = await keys.access(provider, actor)
    if key is None:
        return json_error(
            404,
            ErrorCode.KEY_NOT_FOUND,
            f"No {provider} key is stored. Run: agentspace-gateway keys add {provider}",
            validProviders=list(PROVIDERS),
        )
    return web.json_response({"provider": provider, "key": key}, headers=NO_STORE)


async def _summary_at_shutdown(app: web.Application) -> AsyncIterator[None]:
    """Registered after storage, so it ends before the database closes."""
    yield

    async def record(detail: str) -> None:
        await app[appkeys.AUDIT_LOG].record(AuditEvent.ACCESS_RATE_LIMITED.value, detail=detail)

    try:
        await write_pending_summary(app[appkeys.FAILED_AUTH], record)
    except (StorageError, sqlite3.Error, OSError) as error:
        # Logged already (write_pending_summary warns first); the shutdown goes on.
        log.warning("the failed-auth summary could not be audited at shutdown: %s", error)


def setup_keyserver(app: web.Application) -> None:
    settings = app[appkeys.CONFIG].keyserver
    # Shared with the gateway: a wrong token counts the same on /keys and /gateway.
    app[appkeys.FAILED_AUTH] = FailedAuthLimiter(
        settings.failed_auth_limit,
        settings.failed_auth_window_seconds,
        global_per_second=settings.failed_auth_global_per_second,
    )
    app.cleanup_ctx.append(_summary_at_shutdown)
    app.router.add_get("/health", health)
    app.router.add_get("/keys/{provider}", get_key)
