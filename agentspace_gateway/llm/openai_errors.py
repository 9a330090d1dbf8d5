"""An OpenAI-compatible server's failures in the gateway's vocabulary.

OpenAI answers an error with ``{"error": {"message", "type", "param", "code"}}``; servers
that copy its API mostly do too (some send a bare string). The status decides the code, the
error's own ``code`` refines it (``context_length_exceeded``, ``insufficient_quota``), and a
429's retry-after is passed on.
"""

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from agentspace_gateway.llm.errors import retry_after_ms
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

_BY_STATUS = {
    401: (ErrorCode.AUTHENTICATION_FAILED, False),
    403: (ErrorCode.AUTHENTICATION_FAILED, False),
    408: (ErrorCode.UPSTREAM_TIMEOUT, True),
    413: (ErrorCode.CONTEXT_TOO_LONG, False),
    429: (ErrorCode.RATE_LIMITED, True),
    503: (ErrorCode.UPSTREAM_OVERLOADED, True),
    504: (ErrorCode.UPSTREAM_TIMEOUT, True),
}


def error_message(error: object) -> tuple[str, str | None]:
    """The message and code of an error object (or string) as OpenAI-shaped servers send it."""
    if isinstance(error, Mapping):
        code = error.get("code")
        return str(error.get("message") or error), (str(code) if code is not None else None)
    return str(error), None


def status_error(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> GatewayError:
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping) and "error" in parsed:
        message, code = error_message(parsed["error"])
    else:
        message, code = body.decode("utf-8", "replace")[:500] or f"HTTP {status}", None
    gateway_code, retryable = _BY_STATUS.get(status, (ErrorCode.LLM_ERROR, status >= 500))
    if code == "context_length_exceeded":
        gateway_code, retryable = ErrorCode.CONTEXT_TOO_LONG, False
    elif code == "insufficient_quota":
        retryable = False  # a 429 that waiting does not cure
    return GatewayError(
        gateway_code,
        f"{provider}: {message}",
        retryable=retryable,
        retry_after_ms=retry_after_ms(headers) if retryable else None,
    )


def stream_error(provider: str, error: object) -> GatewayError:
    message, _ = error_message(error)
    return GatewayError(ErrorCode.LLM_ERROR, f"{provider}: {message}", retryable=True)


def broken_stream(provider: str) -> GatewayError:
    return GatewayError(
        ErrorCode.LLM_ERROR,
        f"The stream from {provider} ended before it was complete (no [DONE]).",
        retryable=True,
    )


def transport_error(provider: str, base_url: str, error: BaseException) -> GatewayError:
    if isinstance(error, TimeoutError):
        return GatewayError(
            ErrorCode.UPSTREAM_TIMEOUT, f"{provider} did not answer in time.", retryable=True
        )
    if isinstance(error, aiohttp.ClientError | OSError):
        return GatewayError(
            ErrorCode.LLM_ERROR,
            f"The connection to {provider} ({base_url}) failed: {error or type(error).__name__}."
            " Is the server running there?",
            retryable=True,
        )
    return GatewayError(
        ErrorCode.LLM_ERROR,
        f"The stream from {provider} broke ({type(error).__name__}: {error}).",
        retryable=True,
    )
