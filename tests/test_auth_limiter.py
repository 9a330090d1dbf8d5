"""A limiter that fits loopback (issue 19, finding 6), on a real socket from many addresses.

Counted per address, 2,000 wrong tokens cycling through 127.0.0.0/8 were all checked and
audited (535 a second, about 600 audit rows a second), and 10 wrong tokens from any local
process locked the real user out of /keys for 60 s. Now: per credential prefix and overall,
the right token always gets in, and the audit log grows by a bounded number of rows.
"""

import asyncio
import collections
import sqlite3
import time

import aiohttp
import pytest

from agentspace_gateway.config import Config, KeyserverConfig
from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from proxy_helpers import MODEL, proxied_gateway, send_message

API_KEY = "sk-ant-api03-" + "L00pback" * 12
WRONG_TOKENS = 2_000
ADDRESSES = 50
# At most 10 wrong tokens a second are checked; the test's 2,000 take a few seconds here.
GLOBAL_PER_SECOND = 10


def audit_rows(home: Home) -> list[tuple[str, str | None]]:
    with sqlite3.connect(home.database) as connection:
        return connection.execute("SELECT event, detail FROM audit_log ORDER BY id").fetchall()


async def test_a_flood_of_wrong_tokens_from_many_loopback_addresses_is_limited(
    make_client, vault: CredentialVault, home: Home
) -> None:
    vault.add_key("anthropic", API_KEY)
    config = Config(keyserver=KeyserverConfig(failed_auth_global_per_second=GLOBAL_PER_SECOND))
    client = await make_client(config)
    good = {"Authorization": f"Bearer {vault.get_token()}"}
    url = str(client.make_url("/keys/anthropic"))
    rows_before = len(audit_rows(home))
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{n + 2}", 0)))
        for n in range(ADDRESSES)
    ]
    statuses: collections.Counter[int] = collections.Counter()
    good_during: list[int] = []

    async def guess(n: int) -> None:
        # Every guess a fresh prefix: nothing a per-prefix count alone would stop.
        headers = {"Authorization": f"Bearer {n:08d}" + "g" * 35}
        async with sessions[n % ADDRESSES].get(url, headers=headers) as response:
            statuses[response.status] += 1

    began = time.monotonic()
    try:
        for batch in range(0, WRONG_TOKENS, 100):
            await asyncio.gather(*(guess(n) for n in range(batch, batch + 100)))
            # The real user, from 127.0.0.1, in the middle of the flood.
            async with sessions[0].get(url, headers=good) as response:
                good_during.append(response.status)
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
    elapsed = time.monotonic() - began

    assert elapsed < 30
    assert sum(statuses.values()) == WRONG_TOKENS
    assert set(statuses) <= {401, 429}
    # Checked in full (401): the global allowance over the flood's duration, no more.
    assert statuses[401] <= GLOBAL_PER_SECOND * (elapsed + 1)
    assert statuses[401] < WRONG_TOKENS / 10
    assert statuses[429] >= WRONG_TOKENS - statuses[401]
    assert good_during == [200] * (WRONG_TOKENS // 100)  # never locked out
    # The log: at most 30 rows of their own a minute, plus one aggregated row.
    new_rows = audit_rows(home)[rows_before:]
    denied = [row for row in new_rows if row[0] == "access.denied"]
    aggregated = [row for row in new_rows if row[0] == "access.rate_limited"]
    assert len(denied) <= 30
    assert len(aggregated) <= 1 + int(elapsed // 60)
    assert len(new_rows) <= 30 + 1 + int(elapsed // 60) + len(good_during)  # + key.access
    assert "refused 429 without a row of their own" in (aggregated[0][1] or "")


async def test_a_flood_on_one_prefix_does_not_lock_out_another(
    make_client, vault: CredentialVault
) -> None:
    vault.add_key("anthropic", API_KEY)
    client = await make_client(Config(keyserver=KeyserverConfig(failed_auth_limit=5)))
    stale = {"Authorization": "Bearer stalestale" + "s" * 33}
    other = {"Authorization": "Bearer otherother" + "o" * 33}
    flood = [(await client.get("/keys/anthropic", headers=stale)).status for _ in range(200)]
    assert flood[:5] == [401] * 5
    assert set(flood[5:]) == {429}
    # Another prefix is still checked (401, not 429), and the right token gets in.
    assert (await client.get("/keys/anthropic", headers=other)).status == 401
    good = {"Authorization": f"Bearer {vault.get_token()}"}
    assert (await client.get("/keys/anthropic", headers=good)).status == 200


async def test_wrong_client_keys_on_the_http_api_are_limited_the_same_way(
    make_client, fake_anthropic, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    url = f"{proxied.base_url}/v1/messages"
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    rows_before = len(audit_rows(home))
    statuses: collections.Counter[int] = collections.Counter()
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{n + 2}", 0)))
        for n in range(10)
    ]

    async def guess(n: int) -> None:
        # A fresh public prefix (asg_ and 6 characters) for every guess.
        headers = {"x-api-key": f"asg_{n:06d}" + "k" * 37}
        async with sessions[n % 10].post(url, json=body, headers=headers) as response:
            statuses[response.status] += 1

    began = time.monotonic()
    try:
        for batch in range(0, 500, 100):
            await asyncio.gather(*(guess(n) for n in range(batch, batch + 100)))
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
    elapsed = time.monotonic() - began
    # The valid key, from 127.0.0.1, right after the flood.
    request_id = await send_message(proxied, proxied.key.secret)

    assert elapsed < 30
    assert statuses[401] <= 10 * (elapsed + 1)
    assert statuses[429] == 500 - statuses[401]
    assert proxied.usage_row(request_id)["stop_reason"] == "end_turn"  # it got in
    assert len(proxied.fake.requests) == 1  # and only it went upstream
    new_rows = [event for event, _ in audit_rows(home)[rows_before:]]
    assert new_rows.count("client.refused") <= 30
    assert new_rows.count("access.rate_limited") <= 1 + int(elapsed // 60)
