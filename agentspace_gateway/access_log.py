"""Access log lines that carry no credentials.

The Authorization header is never written, and query-string values under names that
usually carry secrets are replaced, so a token pasted into a URL does not land in a log.
"""

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from agentspace_gateway.redaction import REDACTED

# "code": the console's one-time login link (console_login.py).
SECRET_QUERY_NAMES = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "auth", "code"}
)


def redacted_target(request: BaseRequest) -> str:
    if not request.query_string:
        return request.path
    if not any(name.lower() in SECRET_QUERY_NAMES for name in request.query):
        return request.path_qs
    pairs = [
        f"{name}={REDACTED if name.lower() in SECRET_QUERY_NAMES else value}"
        for name, value in request.query.items()
    ]
    return f"{request.path}?{'&'.join(pairs)}"


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.1fms "%s"',
            request.remote,
            request.method,
            redacted_target(request),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time * 1000,
            request.headers.get("User-Agent", "-"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
