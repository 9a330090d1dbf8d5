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


def configure_logging(level: str, *, access_log: bool = True) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, CurrentStderrHandler)), None)
    if handler is None:
        handler = CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        install_log_redaction(handler)
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
