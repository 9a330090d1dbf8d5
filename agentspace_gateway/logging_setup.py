"""Process-wide logging: one stderr handler, secrets filtered out of every record."""

import logging
import sys
from typing import TextIO

from agentspace_gateway.redaction import install_log_redaction

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time, not the one that existed at setup."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


# Libraries whose DEBUG lines carry what users wrote: aiosqlite logs every call with its SQL
# parameters (prompts and replies), the anthropic SDK every request's options. They stay at
# INFO whatever logging.level says, so DEBUG shows the gateway's own detail and never content.
CONTENT_LOGGERS = ("aiosqlite", "anthropic", "httpx", "httpx2", "httpcore")


class _NoRequestLines(logging.Filter):
    """Drops httpx's ``HTTP Request: POST ... "HTTP/1.1 200 OK"`` INFO line, written for
    every upstream request: a write to stderr per chat was 2-5% of the gateway's CPU, and
    the line says nothing the gateway's own log and usage ledger do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("HTTP Request:"))


def configure_logging(level: str, *, access_log: bool = True, take_over: bool = False) -> None:
    """One stderr handler on the root logger, at ``level``.

    ``take_over``: the process was started by another tool (a development server) that set
    up logging its own way first; its root handlers go (``python -m aiohttp.web`` installs
    one at DEBUG, unfiltered) and the handlers it keeps for aiohttp's loggers get the secret
    filter too.
    """
    root = logging.getLogger()
    if take_over:
        for other in [h for h in root.handlers if not isinstance(h, CurrentStderrHandler)]:
            root.removeHandler(other)
        for name in ("aiohttp.access", "aiohttp.server"):
            for kept in logging.getLogger(name).handlers:
                install_log_redaction(kept)
    handler = next((h for h in root.handlers if isinstance(h, CurrentStderrHandler)), None)
    if handler is None:
        handler = CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        install_log_redaction(handler)
        root.addHandler(handler)
    root.setLevel(level)
    floor = max(logging.INFO, root.getEffectiveLevel())
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    for name in ("httpx", "httpx2"):
        http_client = logging.getLogger(name)
        if not any(isinstance(f, _NoRequestLines) for f in http_client.filters):
            http_client.addFilter(_NoRequestLines())
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
