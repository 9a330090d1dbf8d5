"""The gateway's error vocabulary, in one place, and the exception handlers raise to use it."""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    STREAM_IN_PROGRESS = "STREAM_IN_PROGRESS"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    NO_ACTIVE_STREAM = "NO_ACTIVE_STREAM"
    NO_API_KEY = "NO_API_KEY"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_OVERLOADED = "UPSTREAM_OVERLOADED"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    LLM_ERROR = "LLM_ERROR"
    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    # The database could not be read or written: details.kind says why (disk_full, locked,
    # damaged, permission, unknown), the message what to do.
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    # The HTTP routes' (the key server, /gateway's upgrade, the host check): the same
    # vocabulary, so a client reads one enum whichever way it was answered.
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    HTTP_ERROR = "HTTP_ERROR"
    MISDIRECTED_REQUEST = "MISDIRECTED_REQUEST"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
    VAULT_UNAVAILABLE = "VAULT_UNAVAILABLE"
    TOO_MANY_FAILED_ATTEMPTS = "TOO_MANY_FAILED_ATTEMPTS"
    UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"


class GatewayError(Exception):
    """Raised by a handler; the dispatcher turns it into an ``error`` reply to the request."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        details: Any = None,
        *,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
