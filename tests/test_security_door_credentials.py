"""#19: every door asks who you are, loopback included. The WebSocket takes the gateway
token, a client key (scoped to that client's sessions and usage) or the console's cookie."""

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway import appkeys
from agentspace_gateway.config import AnthropicConfig, Config, GatewayConfig
from agentspace_gateway.home import Home
from agentspace_gateway.storage.client_keys import ClientKeyRepository, IssuedKey
from agentspace_gateway.vault import CredentialVault

from chat_helpers import query, send_chat
from conftest import TEST_API_KEY
from fake_anthropic import FakeAnthropic, Scenario
from wsclient import exchange

Client = TestClient[web.Request, web.Application]


async def refusal(client: Client, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/gateway", headers=headers)
    response = await client.get("/gateway", headers=headers)
    assert response.status == refused.value.status
    return refused.value.status, await response.json()


async def issue(client: Client, name: str) -> IssuedKey:
    return await ClientKeyRepository(client.app[appkeys.DATABASE]).issue(name)


async def test_the_default_gateway_refuses_a_websocket_without_a_credential(
    make_client, vault: CredentialVault
) -> None:
    config = Config(gateway=GatewayConfig(auth_timeout_seconds=0.5))
    client = await make_client(config, logged_in=False)
    # No header and no cookie: only an auth frame could still prove the token; none comes.
    async with client.ws_connect("/gateway") as ws:
        closed = await ws.receive(timeout=5)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4401


async def test_without_a_vault_and_without_a_credential_the_upgrade_is_refused(
    make_client,
) -> None:
    client = await make_client(logged_in=False)
    status, body = await refusal(client, {})
    assert status == 503
    assert body["error"]["code"] == "VAULT_UNAVAILABLE"
    assert "clients add" in body["error"]["message"]


async def test_a_wrong_token_an_unknown_and_a_revoked_client_key_are_refused(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(logged_in=False)
    issued = await issue(client, "laptop")
    await ClientKeyRepository(client.app[appkeys.DATABASE]).revoke("laptop")
    unknown = issued.secret[:-4] + ("aaaa" if not issued.secret.endswith("aaaa") else "bbbb")
    for headers in (
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {unknown}"},
        {"x-api-key": issued.secret},
    ):
        status, body = await refusal(client, headers)
        assert status == 401, headers
        assert body["error"]["code"] == "UNAUTHORIZED"
    _, body = await refusal(client, {"x-api-key": issued.secret})
    assert "revoked" in body["error"]["message"]
    assert issued.secret not in body["error"]["message"]


async def test_each_credential_opens_the_websocket(make_client, vault: CredentialVault) -> None:
    client = await make_client(logged_in=False)
    issued = await issue(client, "laptop")
    token = vault.get_token()
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {issued.secret}"},
        {"x-api-key": issued.secret},
    ):
        async with client.ws_connect("/gateway", headers=headers) as ws:
            assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
    # The fixture's way: the console's cookie.
    logged_in = await make_client()
    async with logged_in.ws_connect("/gateway") as ws:
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"


async def test_require_token_false_opens_loopback_again(make_client) -> None:
    client = await make_client(Config(gateway=GatewayConfig(require_token=False)), logged_in=False)
    async with client.ws_connect("/gateway") as ws:
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"


@pytest.fixture
async def two_clients(make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    _, base_url = fake_anthropic
    config = Config(anthropic=AnthropicConfig(base_url=base_url, max_retries=0))
    client = await make_client(config)
    return client, await issue(client, "alice"), await issue(client, "bob")


async def test_a_client_key_sees_only_its_own_sessions_and_usage(
    two_clients, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    client, alice, bob = two_clients
    fake, _ = fake_anthropic
    fake.enqueue(*(Scenario(input_tokens=10 * n, output_tokens=n) for n in (1, 2, 3, 4)))
    sessions = {}
    for name, headers in (
        ("alice", {"x-api-key": alice.secret}),
        ("bob", {"Authorization": f"Bearer {bob.secret}"}),
        ("owner", {}),  # the fixture's console cookie
    ):
        async with client.ws_connect("/gateway", headers=headers) as ws:
            frames = await send_chat(ws, f"c-{name}", f"hello from {name}")
            assert frames[-1]["type"] == "chat.stream.end", frames[-1]
            sessions[name] = frames[0]["sessionId"]

    async with client.ws_connect("/gateway", headers={"x-api-key": alice.secret}) as ws:
        listing = await exchange(ws, {"type": "session.list", "id": "l"})
        assert [s["sessionId"] for s in listing["sessions"]] == [sessions["alice"]]
        assert listing["sessions"][0]["origin"]["client"] == "alice"
        # Bob's session and the owner's are "not found" to alice: to read, to chat into, to
        # inspect or to count.
        for other in (sessions["bob"], sessions["owner"]):
            for message in (
                {"type": "session.history", "id": "h", "sessionId": other},
                {"type": "chat.send", "id": "s", "sessionId": other, "content": "mine now"},
                {"type": "context.inspect", "id": "i", "sessionId": other},
                {"type": "usage.query", "id": "u", "sessionId": other},
            ):
                reply = await exchange(ws, message)
                assert reply["type"] == "error", reply
                assert reply["code"] == "SESSION_NOT_FOUND", reply
        # Her own session she can go on with, by its id.
        more = await send_chat(ws, "c-more", "more from alice", sessionId=sessions["alice"])
        assert more[-1]["type"] == "chat.stream.end", more[-1]
        history = await exchange(
            ws, {"type": "session.history", "id": "h", "sessionId": sessions["alice"]}
        )
        assert [m["content"] for m in history["messages"]][::2] == [
            "hello from alice",
            "more from alice",
        ]
        usage = await exchange(ws, {"type": "usage.query", "id": "u"})
        assert usage["grandTotal"]["requestCount"] == 2
        (model_usage,) = usage["perModel"].values()
        assert model_usage["inputTokens"] == 10 + 40  # her first request and the fourth
        refused = await exchange(ws, {"type": "usage.query", "id": "b", "client": "bob"})
        assert refused["code"] == "FORBIDDEN"

    # The owner still sees everything, and the clients' usage under their names.
    async with client.ws_connect("/gateway") as ws:
        listing = await exchange(ws, {"type": "session.list", "id": "l"})
        assert {s["sessionId"] for s in listing["sessions"]} == set(sessions.values())
        usage = await exchange(ws, {"type": "usage.query", "id": "u"})
        assert usage["grandTotal"]["requestCount"] == 4
        bobs = await exchange(ws, {"type": "usage.query", "id": "b", "client": "bob"})
        assert bobs["grandTotal"]["requestCount"] == 1
    # Nothing of alice's went into theirs, though her message's write is queued before the
    # session it names is read.
    assert query(home, "SELECT session_id FROM messages WHERE content = 'mine now'") == []


async def test_revoking_a_client_key_closes_its_open_connections(make_client, home: Home) -> None:
    config = Config(gateway=GatewayConfig(token_check_seconds=0.1))
    client = await make_client(config, logged_in=False)
    issued = await issue(client, "laptop")
    other = await issue(client, "desktop")
    revoked_ws = await client.ws_connect("/gateway", headers={"x-api-key": issued.secret})
    async with client.ws_connect("/gateway", headers={"x-api-key": other.secret}) as kept:
        assert (await exchange(revoked_ws, {"type": "ping", "id": "p"}))["type"] == "pong"
        await ClientKeyRepository(client.app[appkeys.DATABASE]).revoke("laptop")
        closed = await revoked_ws.receive(timeout=5)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert revoked_ws.close_code == 4401
        assert (await exchange(kept, {"type": "ping", "id": "p"}))["type"] == "pong"
