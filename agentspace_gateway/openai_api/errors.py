"""Errors the OpenAI door answers itself, in OpenAI's envelope
(``{"error": {"message", "type", "param", "code"}}``), which OpenAI's clients parse."""

import json

from aiohttp import web

from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

# The Anthropic door's error types (what the shared client-key check answers) in OpenAI's.
_FROM_ANTHROPIC = {
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "invalid_request_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "api_error": ("server_error", None),
}
_BY_CODE = {
    ErrorCode.UNKNOWN_PROVIDER: (404, "invalid_request_error", "model_not_found"),
    ErrorCode.NO_API_KEY: (500, "server_error", "no_provider_key"),
}


def openai_error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return web.json_response({"error": error}, status=status, headers=headers)


def invalid_request(message: str, param: str | None = None) -> web.Response:
    return openai_error(400, message, param=param)


def from_gateway_error(error: GatewayError) -> web.Response:
    status, error_type, code = _BY_CODE.get(
        ErrorCode(error.code), (500, "server_error", str(error.code).lower())
    )
    return openai_error(status, error.message, error_type, code=code)


def from_anthropic_response(response: web.Response) -> web.Response:
    """A refusal the shared (Anthropic door's) checks answered, in OpenAI's envelope."""
    try:
        error = json.loads(response.body)["error"]  # type: ignore[arg-type]
        error_type, code = _FROM_ANTHROPIC.get(error["type"], ("server_error", None))
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
    return openai_error(response.status, message, error_type, code=code, headers=headers)


def budget_refused(message: str) -> web.Response:
    """A budget has no room for the request: OpenAI's out-of-quota error, with the header
    OpenAI's SDKs obey not to retry (they retry every other 429)."""
    return openai_error(
        429,
        message,
        "insufficient_quota",
        code="insufficient_quota",
        headers={"x-should-retry": "false"},
    )
