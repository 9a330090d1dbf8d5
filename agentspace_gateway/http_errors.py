"""HTTP errors as JSON bodies: {"error": {"code", "message", ...}}, for every route."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentspace_gateway.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.REQUEST_TOO_LARGE,
    500: ErrorCode.INTERNAL_ERROR,
}


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> web.Response:
    body = {"error": {"code": code, "message": message, **details}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def json_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise
        code = _CODES.get(error.status, ErrorCode.HTTP_ERROR)
        message = error.reason if error.status != 404 else f"No route for {request.path}"
        return json_error(error.status, code, message, headers=_kept_headers(error))


def _kept_headers(error: web.HTTPException) -> dict[str, str]:
    # Allow tells a client which methods would work; the rest describe the old body.
    return {name: value for name, value in error.headers.items() if name in ("Allow",)}
