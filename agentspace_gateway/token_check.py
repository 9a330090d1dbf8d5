"""The gateway token on an HTTP route (``/keys``, the console's login codes): checked first,
so a lockout never applies to the right token; a wrong or missing one refused and audited
through the failed-credential limiter."""

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.audited_keys import Actor, AuditedKeys, AuditEvent
from agentspace_gateway.bearer import challenge, presented_token
from agentspace_gateway.failed_auth import judge_wrong, too_many_failures
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode


async def token_refusal(
    request: web.Request,
    keys: AuditedKeys,
    actor: Actor,
    *,
    where: str,
    hint: str,
    provider: str | None = None,
) -> web.Response | None:
    """None if the request presents the gateway token; otherwise the 401 (or 429 while the
    limiter holds) to answer. ``hint``: how to find the token, after the reason."""
    presented = presented_token(request.headers.get("Authorization"))
    if presented.token is not None and await keys.token_is_valid(presented.token):
        return None
    reason = presented.problem or "wrong bearer token"

    async def record(kind: str, detail: str) -> None:
        event = AuditEvent.ACCESS_DENIED if kind == "denied" else AuditEvent.ACCESS_RATE_LIMITED
        await keys.record(event, actor, provider=provider, detail=detail)

    wait = await judge_wrong(
        request.app[appkeys.FAILED_AUTH],
        presented.token,
        where=where,
        reason=reason,
        record=record,
    )
    if wait is not None:
        return too_many_failures(wait)
    return json_error(
        401,
        ErrorCode.UNAUTHORIZED,
        f"{reason}. {hint}",
        headers=challenge(invalid=presented.token is not None),
    )
