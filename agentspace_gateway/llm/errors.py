"""Anthropic failures in the gateway's vocabulary: a code, the upstream message, and
whether (and when) trying again may work.

The same judgement for the SDK's errors (``upstream_error``: ``context.inspect``, the OpenAI
door) and for an answer the gateway read itself (``status_error``: the chat's stream, which
is sent without the SDK), so a refusal maps alike whichever way the request went.
"""

import email.utils
import json
import time
from collections.abc import Iterator, Mapping

import aiohttp
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
    if isinstance(error, anthropic.APIStatusError):
        return _status_error(error)
    # A transport failure reaches us bare (httpx2's own error, as SDK releases up to 2.16 raise
    # it mid-stream) or wrapped in APIConnectionError/APITimeoutError (2.17 on, and before the
    # response on every release): judged by the whole cause chain, each maps the same way.
    chain = list(_chain(error))
    if any(_is_timeout(link) for link in chain):
        return _error(ErrorCode.UPSTREAM_TIMEOUT, "Anthropic did not answer in time.", True)
    transport = next((link for link in chain if _is_transport(link)), None)
    if transport is not None:
        return _error(
            ErrorCode.LLM_ERROR,
            f"The connection to Anthropic failed: {_describe(transport)}",
            True,
        )
    # Anything else broke the stream, such as an event that could not be parsed.
    return _error(
        ErrorCode.LLM_ERROR,
        f"The stream from Anthropic broke ({type(error).__name__}: {error}).",
        True,
    )


def _status_error(error: anthropic.APIStatusError) -> GatewayError:
    message = error.api_message or str(error)
    return _judged(error.status_code, error.type, message, error.response.headers)


def status_error(status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An error answer (``status`` 4xx or 5xx, ``raw`` its body) judged as the SDK's
    ``APIStatusError`` for it would be: the body's ``error.message`` and ``error.type``,
    else the SDK's own words for a body without them."""
    text = raw.decode("utf-8", "replace").strip()
    body: object
    try:
        body = json.loads(text)
        fallback = f"Error code: {status} - {body}"
    except ValueError:
        body, fallback = text, text or f"Error code: {status}"
    return error_body(status, body, headers, fallback)


def error_body(
    status: int, body: object, headers: Mapping[str, str], fallback: str
) -> GatewayError:
    """``body`` (parsed) as an error: an answer's, or an ``error`` event's (status 200, its
    ``error.type`` then says what went wrong); ``fallback`` when it names no message."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return _judged(
        status,
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) and message else fallback,
        headers,
    )


def _judged(
    status: int, kind: str | None, message: str, headers: Mapping[str, str]
) -> GatewayError:
    code, retryable = _BY_TYPE.get(kind or "", (None, False))
    if code is None:
        code, retryable = _BY_STATUS.get(status, (ErrorCode.LLM_ERROR, False))
    if kind == "invalid_request_error" and any(hint in message.lower() for hint in _TOO_LONG_HINTS):
        code, retryable = ErrorCode.CONTEXT_TOO_LONG, False
    if code is ErrorCode.LLM_ERROR and status >= 500:
        retryable = True
    return _error(code, message, retryable, retry_after_ms(headers))


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


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from, and so on (a cycle is followed once). Only the
    explicit cause: an error raised while handling another (say, during the SDK's retry after
    a timeout) is not that error."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__


def _is_timeout(error: BaseException) -> bool:
    # By class name, not by import: the SDK's HTTP client (httpx, now httpx2) is its own
    # choice, and both name their timeout base TimeoutException.
    return isinstance(error, anthropic.APITimeoutError | TimeoutError) or _named(
        error, "TimeoutException"
    )


def _is_transport(error: BaseException) -> bool:
    # aiohttp's own errors: the chat's stream is read with it (ServerDisconnectedError and
    # ClientPayloadError are not OSErrors).
    return isinstance(
        error, anthropic.APIConnectionError | aiohttp.ClientError | OSError
    ) or _named(error, "TransportError")


def _named(error: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(error).__mro__)


def _describe(error: BaseException) -> str:
    """The transport's own words; the SDK's wrapper says only "Connection error." at times."""
    below = (link for link in _chain(error) if not isinstance(link, anthropic.APIConnectionError))
    named = next(below, error)
    return str(named) or type(named).__name__
