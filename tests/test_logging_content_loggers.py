"""At logging.level = DEBUG the libraries that log what users wrote stay at INFO, the SDK's
own HTTP client (httpx2, since anthropic 2.x) among them."""

import logging
from collections.abc import Iterator

import pytest

from agentspace_gateway.logging_setup import configure_logging

# Every library below the SDK that logs requests: a new one must be added here and held.
REQUEST_LOGGERS = ("aiosqlite", "anthropic", "httpx2", "httpx", "httpcore")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *REQUEST_LOGGERS)}
    handlers = list(root.handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("name", REQUEST_LOGGERS)
def test_a_request_logging_library_stays_at_info_under_debug(name: str) -> None:
    configure_logging("DEBUG")
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    assert logging.getLogger(f"{name}.child").getEffectiveLevel() == logging.INFO
