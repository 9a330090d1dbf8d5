"""Wrong bearer tokens from one address are slowed: 429 with Retry-After, audited once.

The key server and the gateway (upgrade header and first-frame auth) share one count per
address; loopback is counted like any other address. The 401 matrix itself is in
test_keyserver.py.
"""

import asyncio
import sqlite3

import aiohttp
import pytest
from aiohttp import WSMsgType

from agentspace_gateway.config import Config, GatewayConfig, KeyserverConfig
from agentspace_gateway.failed_auth import FailedAuthLimiter, address_key
from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from wsclient import exchange, request

API_KEY = "sk-ant-api03-" + "L1m1tMe" * 12


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(home: Home) -> list[tuple[str, str | None]]:
    with sqlite3.connect(home.database) as connection:
        return connection.execute("SELECT event, detail FROM audit_log ORDER BY id").fetchall()


def limited(limit: int = 3, window: float = 60.0, **gateway: object) -> Config:
    return Config(
        keyserver=KeyserverConfig(failed_auth_limit=limit, failed_auth_window_seconds=window),
        gateway=GatewayConfig(**gateway),  # type: ignore[arg-type]
    )


# -- the limiter on its own ---------------------------------------------------------------


def test_the_limit_trips_on_the_nth_failure_and_lifts_after_the_window() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, 60.0, clock=clock)
    assert [limiter.failed("127.0.0.1") for _ in range(3)] == [False, False, True]
    assert limiter.retry_after("127.0.0.1") == pytest.approx(60.0)
    assert limiter.retry_after("127.0.0.2") is None  # another address is not affected
    clock.now += 30
    assert limiter.retry_after("127.0.0.1") == pytest.approx(30.0)
    clock.now += 30.001
    assert limiter.retry_after("127.0.0.1") is None


def test_it_is_a_sliding_window_not_a_lifetime_count() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, 10.0, clock=clock)
    for _ in range(10):
        assert not limiter.failed("::1")
        clock.now += 6  # two failures per window at most: never limited
    assert limiter.retry_after("::1") is None


def test_memory_stays_bounded_under_many_addresses() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(5, 60.0, max_addresses=100, clock=clock)
    for n in range(10_000):
        limiter.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        assert len(limiter) <= 100
    clock.now += 61
    limiter.retry_after("10.0.0.1")
    assert len(limiter) == 0  # stale addresses are pruned, not kept forever


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("2001:db8::1", "2001:db8::ffff:1", True),  # one /64: one host's addresses
        ("2001:db8::1", "2001:db8:0:1::1", False),
        ("::ffff:127.0.0.1", "127.0.0.1", True),
        ("fe80::1%eth0", "fe80::2", True),
        ("127.0.0.1", "127.0.0.2", False),
        (None, "unknown", True),
    ],
)
def test_addresses_are_grouped_as_hosts_own_them(left: str, right: str, same: bool) -> None:
    assert (address_key(left) == address_key(right)) is same


# -- the key server -----------------------------------------------------------------------


async def test_repeated_wrong_tokens_get_429_and_one_audit_row(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3))
    vault.add_key("anthropic", API_KEY)
    token = vault.get_token()
    wrong = {"Authorization": "Bearer " + "w" * 43}

    statuses = [(await client.get("/keys/anthropic", headers=wrong)).status for _ in range(3)]
    refused = await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {token}"})

    assert statuses == [401, 401, 401]
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    error = (await refused.json())["error"]
    assert error["code"] == "TOO_MANY_FAILED_ATTEMPTS"
    assert "token show" in error["message"]
    assert API_KEY not in await refused.text()
    log = events(home)
    assert [e for e, _ in log].count("access.denied") == 3  # every denial is still a row
    [(_, detail)] = [row for row in log if row[0] == "access.rate_limited"]
    assert "3 wrong tokens within 60 s" in (detail or "")
    assert "127.0.0.1" in (detail or "")
    # Refusals during the lockout add no rows: a guesser cannot grow the database at will.
    for _ in range(5):
        assert (await client.get("/keys/anthropic", headers=wrong)).status == 429
    assert len(events(home)) == len(log)


async def test_requests_without_a_token_do_not_count(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=2))
    vault.add_key("anthropic", API_KEY)
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}) * 3:
        assert (await client.get("/keys/anthropic", headers=headers)).status == 401
    ok = await client.get(
        "/keys/anthropic", headers={"Authorization": f"Bearer {vault.get_token()}"}
    )
    assert ok.status == 200
    assert "access.rate_limited" not in [e for e, _ in events(home)]


async def test_the_right_token_works_again_after_the_window(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(limited(limit=2, window=0.5))
    vault.add_key("anthropic", API_KEY)
    good = {"Authorization": f"Bearer {vault.get_token()}"}
    for _ in range(2):
        await client.get("/keys/anthropic", headers={"Authorization": "Bearer nope-nope"})
    assert (await client.get("/keys/anthropic", headers=good)).status == 429
    await asyncio.sleep(0.6)
    response = await client.get("/keys/anthropic", headers=good)
    assert response.status == 200
    assert (await response.json())["key"] == API_KEY


# -- the gateway --------------------------------------------------------------------------


async def upgrade_status(client, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers=headers)
    return refused.value.status


async def test_the_gateway_and_the_key_server_share_the_count(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3, require_token=True))
    token = vault.get_token()
    await client.get("/keys/anthropic", headers={"Authorization": "Bearer wrong-1"})
    assert await upgrade_status(client, {"Authorization": "Bearer wrong-2"}) == 401
    assert await upgrade_status(client, {"Authorization": "Bearer wrong-3"}) == 401

    # Now even the right token, by header or by first frame, is refused before the upgrade.
    assert await upgrade_status(client, {"Authorization": f"Bearer {token}"}) == 429
    assert await upgrade_status(client, {}) == 429
    assert (
        await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {token}"})
    ).status == 429
    assert [e for e, _ in events(home)].count("access.rate_limited") == 1


async def test_wrong_auth_frames_count_and_a_lockout_closes_4429(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=2, require_token=True, auth_timeout_seconds=5.0))
    token = vault.get_token()
    # Opened before the lockout, used after it.
    waiting = await client.ws_connect("/gateway")
    for attempt in range(2):
        async with client.ws_connect("/gateway") as ws:
            await request(ws, {"type": "auth", "id": f"a{attempt}", "token": "not-the-token"})
            frame = await ws.receive(timeout=5)
            assert (frame.type, frame.data) == (WSMsgType.CLOSE, 4401)

    await request(waiting, {"type": "auth", "id": "late", "token": token})
    frame = await waiting.receive(timeout=5)
    assert (frame.type, frame.data) == (WSMsgType.CLOSE, 4429)
    assert "too many wrong tokens" in frame.extra
    assert await upgrade_status(client, {}) == 429
    log = [e for e, _ in events(home)]
    assert log.count("access.denied") == 2
    assert log.count("access.rate_limited") == 1


async def test_first_frames_that_guess_nothing_do_not_count(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(limited(limit=2, require_token=True))
    for _ in range(3):
        async with client.ws_connect("/gateway") as ws:
            await request(ws, {"type": "ping", "id": "p"})
            frame = await ws.receive(timeout=5)
            assert (frame.type, frame.data) == (WSMsgType.CLOSE, 4401)
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "auth", "id": "a", "token": vault.get_token()})
        assert reply == {"type": "auth.ok"}
