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


class GatewayError(Exception):
    """Raised by a handler; the dispatcher turns it into an ``error`` reply to the request."""

    def __init__(self, code: ErrorCode | str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.details = details
