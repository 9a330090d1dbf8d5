"""Errors the proxy itself answers, in Anthropic's own envelope (clients parse it)."""

from aiohttp import web


def anthropic_error(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": error_type, "message": message}},
        status=status,
        headers=headers,
    )


def invalid_request(message: str) -> web.Response:
    return anthropic_error(400, "invalid_request_error", message)


def too_large(limit: int) -> web.Response:
    return anthropic_error(
        413,
        "request_too_large",
        f"Request exceeds the gateway's limit of {limit} bytes (proxy.max_body_bytes).",
    )


def upstream_unreachable(detail: str) -> web.Response:
    return anthropic_error(
        502, "api_error", f"The gateway could not reach Anthropic: {detail}. Try again."
    )


def no_provider_key() -> web.Response:
    return anthropic_error(
        500,
        "api_error",
        "The gateway has no Anthropic API key. Run: agentspace-gateway keys add anthropic",
    )


def budget_refused(message: str) -> web.Response:
    """A budget has no room for the request: Anthropic's rate-limit envelope, and the header
    Anthropic's SDKs obey not to retry (they retry every other 429)."""
    return anthropic_error(429, "rate_limit_error", message, headers={"x-should-retry": "false"})
