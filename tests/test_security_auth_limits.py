"""Wrong bearer tokens are slowed per prefix and overall: 429 with Retry-After, audited
in aggregate, and the right token is never refused.

The key server and the gateway (upgrade header and first-frame auth) share one count. The
401 matrix itself is in test_keyserver.py; the loopback flood is in test_auth_limiter.py.
"""

import asyncio
import sqlite3

import aiohttp
import pytest
from aiohttp import WSMsgType

from agentspace_gateway.config import Config, GatewayConfig, KeyserverConfig
from agentspace_gateway.failed_auth import FailedAuthLimiter, credential_prefix, prefix_label
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


def test_the_limit_trips_per_prefix_and_lifts_after_the_window() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, 60.0, clock=clock)
    assert [limiter.wrong("aaaaaaaa-1").refused_for for _ in range(3)] == [None] * 3
    assert limiter.wrong("aaaaaaaa-2").refused_for == pytest.approx(60.0)
    assert limiter.wrong("bbbbbbbb-1").refused_for is None  # another prefix is not affected
    clock.now += 30
    assert limiter.wrong("aaaaaaaa-3").refused_for == pytest.approx(30.0)
    clock.now += 30.001
    assert limiter.wrong("aaaaaaaa-4").refused_for is None


def test_it_is_a_sliding_window_not_a_lifetime_count() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, 10.0, clock=clock)
    for _ in range(10):
        assert limiter.wrong("same-prefix").refused_for is None
        clock.now += 6  # two failures per window at most: never limited


def test_fresh_prefixes_meet_the_global_limit() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, 60.0, global_per_second=5, clock=clock)
    verdicts = [limiter.wrong(f"{n:08d}").refused_for for n in range(8)]
    assert verdicts[:5] == [None] * 5
    assert all(v is not None and v <= 1.0 for v in verdicts[5:])
    clock.now += 1.001
    assert limiter.wrong("fresh-one").refused_for is None


def test_a_missing_credential_is_never_refused_429() -> None:
    limiter = FailedAuthLimiter(1, 60.0, global_per_second=1)
    assert all(limiter.wrong(None).refused_for is None for _ in range(20))


def test_memory_stays_bounded_under_many_prefixes() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(5, 60.0, global_per_second=10**6, max_prefixes=100, clock=clock)
    for n in range(10_000):
        limiter.wrong(f"{n:08d}")
        assert len(limiter) <= 100
    clock.now += 61
    limiter.wrong("x")
    assert len(limiter) == 1  # stale prefixes are pruned, not kept forever


@pytest.mark.parametrize(
    ("credential", "label"),
    [
        ("asg_AbCdEf" + "x" * 40, "asg_AbCdEf"),  # a client key's public part, as listed
        (None, "(none)"),
    ],
)
def test_labels_show_only_what_is_public(credential: str | None, label: str) -> None:
    assert prefix_label(credential_prefix(credential)) == label


def test_a_tokens_characters_never_appear_in_its_label() -> None:
    label = prefix_label(credential_prefix("SeCrEtToKeN-rest-of-it"))
    assert label.startswith("#")
    assert "SeCrEt" not in label


# -- the key server and the gateway -------------------------------------------------------


async def test_repeated_wrong_tokens_get_429_but_the_right_one_still_works(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3))
    vault.add_key("anthropic", API_KEY)
    good = {"Authorization": f"Bearer {vault.get_token()}"}
    wrong = {"Authorization": "Bearer " + "w" * 43}

    statuses = [(await client.get("/keys/anthropic", headers=wrong)).status for _ in range(4)]
    refused = await client.get("/keys/anthropic", headers=wrong)
    allowed = await client.get("/keys/anthropic", headers=good)

    assert statuses == [401, 401, 401, 429]
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    error = (await refused.json())["error"]
    assert error["code"] == "TOO_MANY_FAILED_ATTEMPTS"
    assert "token show" in error["message"]
    assert API_KEY not in await refused.text()
    assert allowed.status == 200  # a lockout never applies to the right token
    log = events(home)
    # One row of its own for the prefix, the rest in one aggregated row.
    assert [e for e, _ in log].count("access.denied") == 1
    [(_, detail)] = [row for row in log if row[0] == "access.rate_limited"]
    assert "1 more wrong or missing credentials" in (detail or "")
    assert "w" * 8 not in (detail or "")  # a token's characters never reach the log
    # Refusals during the lockout add no rows: a guesser cannot grow the database at will.
    for _ in range(5):
        assert (await client.get("/keys/anthropic", headers=wrong)).status == 429
    assert len(events(home)) == len(log)


def summaries(home: Home) -> list[str]:
    """The aggregated rows' details, oldest first."""
    return [detail or "" for event, detail in events(home) if event == "access.rate_limited"]


async def refusals_of(client, letter: str, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The statuses of ``count`` requests to /keys with one wrong token (``letter`` * 43)."""
    wrong = {"Authorization": "Bearer " + letter * 43}
    return [(await client.get("/keys/anthropic", headers=wrong)).status for _ in range(count)]


async def test_failures_still_counted_at_shutdown_get_their_aggregated_row(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3))
    vault.add_key("anthropic", API_KEY)
    # 1: its own row; 2: the first summary, written at once; 3 to 6 (the last three refused
    # 429): counted, and due in a summary only after another minute.
    assert await refusals_of(client, "s", 6) == [401, 401, 401, 429, 429, 429]
    before = summaries(home)
    assert len(before) == 1

    await client.close()  # the app shuts down, and its cleanup runs

    after = summaries(home)
    assert after[:1] == before
    [summary] = after[1:]
    assert summary.startswith("at shutdown: 4 more wrong or missing credentials")
    assert "3 of them refused 429" in summary
    assert "s" * 8 not in summary


async def test_a_shutdown_with_nothing_counted_writes_no_summary(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3))
    vault.add_key("anthropic", API_KEY)
    # Its own row, then the first summary: nothing is left to sum up.
    assert await refusals_of(client, "q", 2) == [401, 401]

    await client.close()

    assert len(summaries(home)) == 1


async def test_requests_without_a_token_are_never_refused_429(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(limited(limit=2))
    vault.add_key("anthropic", API_KEY)
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}) * 3:
        assert (await client.get("/keys/anthropic", headers=headers)).status == 401
    ok = await client.get(
        "/keys/anthropic", headers={"Authorization": f"Bearer {vault.get_token()}"}
    )
    assert ok.status == 200


async def test_a_wrong_prefix_is_answered_401_again_after_the_window(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(limited(limit=2, window=0.5))
    vault.add_key("anthropic", API_KEY)
    nope = {"Authorization": "Bearer nope-nope"}
    for _ in range(2):
        await client.get("/keys/anthropic", headers=nope)
    assert (await client.get("/keys/anthropic", headers=nope)).status == 429
    await asyncio.sleep(0.6)
    assert (await client.get("/keys/anthropic", headers=nope)).status == 401


async def upgrade_status(client, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers=headers)
    return refused.value.status


async def test_the_gateway_and_the_key_server_share_the_count(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(limited(limit=3, require_token=True), logged_in=False)
    token = vault.get_token()
    await client.get("/keys/anthropic", headers={"Authorization": "Bearer wrong-to-1"})
    assert await upgrade_status(client, {"Authorization": "Bearer wrong-to-2"}) == 401
    assert await upgrade_status(client, {"Authorization": "Bearer wrong-to-3"}) == 401
    assert await upgrade_status(client, {"Authorization": "Bearer wrong-to-4"}) == 429

    # The right token, by header or by first frame, still gets in.
    async with client.ws_connect("/gateway", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
    async with client.ws_connect("/gateway") as ws:
        assert await exchange(ws, {"type": "auth", "id": "a", "token": token}) == {
            "type": "auth.ok"
        }
    assert (
        await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {token}"})
    ).status != 429


async def test_wrong_auth_frames_count_and_a_lockout_closes_4429(
    make_client, vault: CredentialVault, home: Home
) -> None:
    client = await make_client(
        limited(limit=2, require_token=True, auth_timeout_seconds=5.0), logged_in=False
    )
    codes = []
    for attempt in range(3):
        async with client.ws_connect("/gateway") as ws:
            await request(ws, {"type": "auth", "id": f"a{attempt}", "token": "not-the-token"})
            frame = await ws.receive(timeout=5)
            assert frame.type is WSMsgType.CLOSE
            codes.append(frame.data)
            extra = frame.extra
    assert codes == [4401, 4401, 4429]
    assert "too many wrong tokens" in extra
    log = [e for e, _ in events(home)]
    assert log.count("access.denied") == 1


async def test_first_frames_that_guess_nothing_do_not_count(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(limited(limit=2, require_token=True), logged_in=False)
    for _ in range(3):
        async with client.ws_connect("/gateway") as ws:
            await request(ws, {"type": "ping", "id": "p"})
            frame = await ws.receive(timeout=5)
            assert (frame.type, frame.data) == (WSMsgType.CLOSE, 4401)
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "auth", "id": "a", "token": vault.get_token()})
        assert reply == {"type": "auth.ok"}
