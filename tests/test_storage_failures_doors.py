"""A database another program holds locked, met on every door of a running gateway: the
WebSocket chat, /keys and both HTTP APIs each answer the storage failure in their own
envelope, naming the cause and the next step (never "handler failed" or a plain-text 500).
"""

from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway.config import AnthropicConfig, Config, DatabaseConfig
from agentspace_gateway.home import Home
from agentspace_gateway.storage.client_keys import IssuedKey
from agentspace_gateway.vault import CredentialVault

from chat_helpers import send_chat
from conftest import TEST_API_KEY
from fake_anthropic import FakeAnthropic
from proxy_helpers import MODEL, issue
from storage_failure_helpers import locked_by_another_program

Client = TestClient[web.Request, web.Application]
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def gateway(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    vault: CredentialVault,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Client, IssuedKey]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    _, base_url = fake_anthropic
    config = Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0, timeout_seconds=5.0),
        # A writer gives up after 100 ms instead of 5 s: the test waits less, nothing else.
        database=DatabaseConfig(busy_timeout_ms=100),
    )
    client = await make_client(config)
    return client, await issue(client, "laptop")


def locked_message(message: str, home: Home) -> None:
    database = home.database
    assert f"Another program holds {database} locked" in message
    assert f"fuser -v {database} {database}-wal {database}-shm" in message
    assert "handler failed" not in message


async def test_chat_on_a_locked_database_is_storage_unavailable(
    gateway: tuple[Client, IssuedKey], home: Home
) -> None:
    client, _ = gateway
    async with client.ws_connect("/gateway") as ws:
        with locked_by_another_program(home.database):
            frames = await send_chat(ws, "c1", "hello")
    error = frames[-1]
    assert error["type"] == "error"
    assert (error["code"], error["requestId"]) == ("STORAGE_UNAVAILABLE", "c1")
    assert error["details"] == {"kind": "locked", "path": str(home.database)}
    assert error["retryable"] is True
    locked_message(error["message"], home)


async def test_keys_on_a_locked_database_answers_json(
    gateway: tuple[Client, IssuedKey], home: Home, vault: CredentialVault
) -> None:
    client, _ = gateway
    token = vault.get_token()
    with locked_by_another_program(home.database):
        response = await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {token}"})
        body = await response.json()
    assert response.status == 503
    assert response.content_type == "application/json"
    assert body["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert body["error"]["kind"] == "locked"
    locked_message(body["error"]["message"], home)


async def test_the_anthropic_api_on_a_locked_database_answers_in_its_envelope(
    gateway: tuple[Client, IssuedKey], home: Home
) -> None:
    client, key = gateway
    sdk = anthropic.AsyncAnthropic(
        api_key=key.secret, base_url=str(client.make_url("")).rstrip("/"), max_retries=0
    )
    async with sdk:
        with (
            locked_by_another_program(home.database),
            pytest.raises(anthropic.InternalServerError) as raised,
        ):
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert raised.value.status_code == 503
    body: Any = raised.value.body
    assert (body["type"], body["error"]["type"]) == ("error", "api_error")
    locked_message(body["error"]["message"], home)


async def test_the_openai_api_on_a_locked_database_answers_in_its_envelope(
    gateway: tuple[Client, IssuedKey], home: Home
) -> None:
    client, key = gateway
    sdk = openai.AsyncOpenAI(
        api_key=key.secret, base_url=str(client.make_url("/v1")), max_retries=0
    )
    async with sdk:
        with (
            locked_by_another_program(home.database),
            pytest.raises(openai.InternalServerError) as raised,
        ):
            await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert raised.value.status_code == 503
    assert raised.value.code == "storage_unavailable"
    assert raised.value.type == "server_error"
    locked_message(raised.value.message, home)


async def test_the_gateway_answers_again_once_the_lock_is_gone(
    gateway: tuple[Client, IssuedKey], home: Home
) -> None:
    client, _ = gateway
    async with client.ws_connect("/gateway") as ws:
        with locked_by_another_program(home.database):
            refused = await send_chat(ws, "c1", "first")
        answered = await send_chat(ws, "c2", "second")
    assert refused[-1]["code"] == "STORAGE_UNAVAILABLE"
    assert answered[-1]["type"] == "chat.stream.end"
