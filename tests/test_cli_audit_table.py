"""agentspace-gateway audit as a table: every column as wide as its widest cell."""

import asyncio

import pytest

from agentspace_gateway.audited_keys import AuditEvent
from agentspace_gateway.cli import main
from agentspace_gateway.cli.context import open_database
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.storage import AuditLog


def record(home: Home, event: str, **fields: str) -> None:
    async def write() -> None:
        async with open_database(home.ensure(), Config()) as database:
            await AuditLog(database).record(event, **fields)

    asyncio.run(write())


def audit_table(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["audit"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_rate_limited_row_keeps_the_columns_aligned(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    record(home, "key.add", provider="anthropic", detail="local user")
    record(
        home,
        AuditEvent.ACCESS_RATE_LIMITED.value,
        remote_addr="2001:db8:85a3::/64",
        user_agent="curl/8.5.0",
        detail="GET /keys/anthropic: 10 wrong tokens within 60 s; refusing for 60 s",
    )
    header, limited, added = audit_table(capsys)
    assert "access.rate_limited" in limited.split()
    for column in ("provider", "remote", "user agent"):
        start = header.index(column)
        # Each row's cell starts where its heading does, after at least two spaces.
        for row in (limited, added):
            assert row[start - 2 : start] == "  ", (column, row)
            assert row[start] != " ", (column, row)
    assert limited[header.index("remote") :].startswith("2001:db8:85a3::/64  curl/8.5.0 / GET")
    assert added[header.index("provider") :].startswith("anthropic")


def test_control_characters_from_a_client_are_shown_escaped(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    record(home, "access.denied", remote_addr="127.0.0.1", user_agent="x\x1b[2Jy\r\n")
    _, row = audit_table(capsys)
    assert "\x1b" not in row
    assert row.endswith("  x\\x1b[2Jy\\r\\n")
