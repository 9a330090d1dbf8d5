"""The upstream pool is shared by every client: no cookie an upstream sets travels on."""

from __future__ import annotations

from typing import Any

import pytest

from agentspace_gateway.home import Home

from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import PROVIDER_KEY, Proxied, issue, proxy_config, send_message


async def test_a_cookie_set_by_the_upstream_is_not_sent_on_later_requests(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    # A host name, not an address: a cookie jar keeps cookies only for names.
    by_name = base_url.replace("127.0.0.1", "localhost")
    client = await make_client(proxy_config(by_name))
    alice, bob = await issue(client, "alice"), await issue(client, "bob")
    fake.enqueue(Scenario(headers={"Set-Cookie": "__cf_bm=alice-visit; Path=/"}))
    first = await client.post(
        "/v1/messages",
        json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []},
        headers={"x-api-key": alice.secret, "anthropic-version": "2023-06-01"},
    )
    assert first.status == 200
    assert "Set-Cookie" not in first.headers
    await send_message(Proxied(client, fake, bob, home), bob.secret)
    assert [r.headers.get("cookie") for r in fake.message_requests] == [None, None]
