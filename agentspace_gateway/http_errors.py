"""HTTP errors as JSON bodies: {"error": {"code", "message", ...}}, for every route.

A storage failure (disk full, a lock, a damaged file) is answered here for every route, in
the envelope its clients parse: Anthropic's on the Anthropic door, OpenAI's on the OpenAI
door, the gateway's own elsewhere; always 503 (the server cannot serve now, and will once
the cause is dealt with) with the cause and next step in the message.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.storage.failures import StorageProblem, storage_problem

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


# The OpenAI door's routes; every other /v1/ route is the Anthropic door's.
OPENAI_PATHS = frozenset({"/v1/chat/completions"})
STORAGE_STATUS = 503
# The response a handler has started sending, if any: once headers are out, no other
# response can replace it.
_PREPARED: web.RequestKey[web.StreamResponse] = web.RequestKey("prepared", web.StreamResponse)


async def remember_prepared(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: note the response that is going out for this request."""
    request[_PREPARED] = response


@web.middleware
async def json_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as error:
        if isinstance(error, web.HTTPException):
            if error.status < 400 or error.content_type == "application/json":
                raise
            return _http_exception(request, error)
        problem = storage_problem(error)
        if problem is None:
            raise
        log.error("%s %s: %s", request.method, request.path, problem)
        log.debug("the storage failure", exc_info=True)
        started: web.StreamResponse | None = request.get(_PREPARED)
        if started is not None:
            return started  # its headers are out: it can only be ended, as it is now
        return storage_error(request.path, problem)


def storage_error(path: str, problem: StorageProblem) -> web.Response:
    """The storage failure, in the envelope of the door ``path`` belongs to."""
    message = f"The gateway's storage failed: {problem}"
    if path in OPENAI_PATHS:
        error = {"message": message, "type": "server_error", "param": None}
        return web.json_response(
            {"error": {**error, "code": "storage_unavailable"}}, status=STORAGE_STATUS
        )
    if path.startswith("/v1/"):
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return web.json_response(body, status=STORAGE_STATUS)
    own = {"code": ErrorCode.STORAGE_UNAVAILABLE, "message": message, **problem.details()}
    return web.json_response({"error": own}, status=STORAGE_STATUS)


def _http_exception(request: web.Request, error: web.HTTPException) -> web.Response:
    code = _CODES.get(error.status, ErrorCode.HTTP_ERROR)
    message = error.reason if error.status != 404 else f"No route for {request.path}"
    return json_error(error.status, code, message, headers=_kept_headers(error))


def _kept_headers(error: web.HTTPException) -> dict[str, str]:
    # Allow tells a client which methods would work; the rest describe the old body.
    return {name: value for name, value in error.headers.items() if name in ("Allow",)}
