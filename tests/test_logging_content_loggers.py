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


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("name", ["httpx2", "httpx"])
def test_the_per_request_line_of_the_http_client_is_dropped_and_its_warnings_kept(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger(name)
    filters = list(logger.filters)
    try:
        configure_logging("INFO")
        with caplog.at_level(logging.INFO):
            logger.info(
                'HTTP Request: %s %s "%s %d %s"', "POST", "http://x/v1", "HTTP/1.1", 200, ""
            )
            logger.warning("connection pool is full")
    finally:
        logger.filters[:] = filters
    assert [record.getMessage() for record in caplog.records if record.name == name] == [
        "connection pool is full"
    ]
