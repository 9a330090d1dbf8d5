"""Anthropic failures in the gateway's vocabulary: a code, the upstream message, and
whether (and when) trying again may work."""

import email.utils
import time
from collections.abc import Mapping

import anthropic

from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

_BY_TYPE = {
    "rate_limit_error": (ErrorCode.RATE_LIMITED, True),
    "overloaded_error": (ErrorCode.UPSTREAM_OVERLOADED, True),
    "authentication_error": (ErrorCode.AUTHENTICATION_FAILED, False),
    "permission_error": (ErrorCode.AUTHENTICATION_FAILED, False),
    "request_too_large": (ErrorCode.CONTEXT_TOO_LONG, False),
    "timeout_error": (ErrorCode.UPSTREAM_TIMEOUT, True),
    "api_error": (ErrorCode.LLM_ERROR, True),
}
_BY_STATUS = {
    401: (ErrorCode.AUTHENTICATION_FAILED, False),
    403: (ErrorCode.AUTHENTICATION_FAILED, False),
    408: (ErrorCode.UPSTREAM_TIMEOUT, True),
    413: (ErrorCode.CONTEXT_TOO_LONG, False),
    429: (ErrorCode.RATE_LIMITED, True),
    504: (ErrorCode.UPSTREAM_TIMEOUT, True),
    529: (ErrorCode.UPSTREAM_OVERLOADED, True),
}
_TOO_LONG_HINTS = ("too long", "prompt is too long", "context window", "maximum context")


def upstream_error(error: BaseException) -> GatewayError:
    if isinstance(error, anthropic.APITimeoutError):
        return _error(ErrorCode.UPSTREAM_TIMEOUT, "Anthropic did not answer in time.", True)
    if isinstance(error, anthropic.APIConnectionError):
        return _error(
            ErrorCode.LLM_ERROR, f"The connection to Anthropic failed: {_cause(error)}", True
        )
    if isinstance(error, anthropic.APIStatusError):
        message = error.api_message or str(error)
        code, retryable = _BY_TYPE.get(error.type or "", (None, False))
        if code is None:
            code, retryable = _BY_STATUS.get(error.status_code, (ErrorCode.LLM_ERROR, False))
        if error.type == "invalid_request_error" and any(
            hint in message.lower() for hint in _TOO_LONG_HINTS
        ):
            code, retryable = ErrorCode.CONTEXT_TOO_LONG, False
        if code is ErrorCode.LLM_ERROR and error.status_code >= 500:
            retryable = True
        return _error(code, message, retryable, retry_after_ms(error.response.headers))
    # Below the SDK, which does not wrap these: the HTTP transport timed out or broke
    # mid-stream (httpx2 errors), or an event could not be parsed (a JSONDecodeError).
    if any(cls.__name__ == "TimeoutException" for cls in type(error).__mro__):
        return _error(ErrorCode.UPSTREAM_TIMEOUT, "Anthropic stopped sending mid-reply.", True)
    return _error(
        ErrorCode.LLM_ERROR,
        f"The stream from Anthropic broke ({type(error).__name__}: {error}).",
        True,
    )


def retry_after_ms(headers: Mapping[str, str]) -> int | None:
    """retry-after-ms, else retry-after in seconds or as an HTTP date."""
    exact = headers.get("retry-after-ms")
    if exact is not None:
        try:
            return max(0, round(float(exact)))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0, round(float(value) * 1000))
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    if parsed is None:
        return None
    return max(0, round((parsed.timestamp() - time.time()) * 1000))


def _error(
    code: ErrorCode, message: str, retryable: bool, retry_after: int | None = None
) -> GatewayError:
    return GatewayError(code, message, retryable=retryable, retry_after_ms=retry_after)


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return str(cause) if cause else str(error)
