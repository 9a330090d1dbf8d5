"""Host header parsing: addresses parsed properly, look-alike names refused."""

import pytest

from agentspace_gateway.host_check import host_allowed, split_host


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:3271", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:3271", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("evil.example:80", "evil.example"),
        ("", None),
        ("[::1", None),
        ("[::1]x", None),
        ("[not-an-address]:1", None),
        ("127.0.0.1:", None),
        ("::1", None),
        ("host:port", None),
    ],
)
def test_split_host(header: str, name: str | None) -> None:
    assert split_host(header) == name


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, False),
        ("127.0.0.1", True),
        ("127.1.2.3:9", True),
        ("localhost:3271", True),
        ("[::1]", True),
        ("127.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("0.0.0.0:3271", False),
        ("192.168.1.10", False),
        ("gateway.lan", True),
        ("GATEWAY.LAN:443", True),
    ],
)
def test_host_allowed(header: str | None, allowed: bool) -> None:
    assert host_allowed(header, ["gateway.lan"]) is allowed
