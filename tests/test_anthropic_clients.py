"""The app's Anthropic client: the vault read kept for a second, the SDK built off the loop."""

import logging
import threading
from typing import Any

import aiohttp
import pytest

from agentspace_gateway.audited_keys import AuditedKeys
from agentspace_gateway.config import AnthropicConfig
from agentspace_gateway.llm import client as client_module
from agentspace_gateway.llm.client import KEY_FRESH_SECONDS, AnthropicClients
from agentspace_gateway.storage import AuditLog, Database
from agentspace_gateway.vault import CredentialVault

FIRST_KEY = "sk-ant-api03-first-key-in-the-vault-aaaa"
SECOND_KEY = "sk-ant-api03-second-key-in-the-vault-bbbb"
ENV_KEY = "sk-ant-api03-from-the-environment-cccc"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of a key from a vault (the class: a vault is a frozen instance)."""
    reads: list[str] = []
    original = CredentialVault.get_key

    def get_key(self: CredentialVault, provider: str) -> str | None:
        reads.append(provider)
        return original(self, provider)

    monkeypatch.setattr(CredentialVault, "get_key", get_key)
    return reads


def clients_for(
    vault: CredentialVault,
    db: Database,
    clock: Clock,
    environ: dict[str, str],
    pool: aiohttp.ClientSession,
) -> AnthropicClients:
    return AnthropicClients(
        AuditedKeys(vault, AuditLog(db)),
        AnthropicConfig(base_url="http://127.0.0.1:9"),
        environ,
        session=pool,
        clock=clock,
    )


async def test_the_vault_is_read_at_most_once_a_second_and_a_new_key_rebuilds_the_client(
    vault: CredentialVault,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    upstream_pool: aiohttp.ClientSession,
) -> None:
    vault.add_key("anthropic", FIRST_KEY)
    reads = count_reads(monkeypatch)
    clock = Clock()
    clients = clients_for(vault, db, clock, {"ANTHROPIC_API_KEY": ENV_KEY}, upstream_pool)
    try:
        first = await clients.client()
        assert first.api_key == FIRST_KEY
        assert len(reads) == 1

        vault.update_key("anthropic", SECOND_KEY)  # as `keys update` does, from another process
        clock.now += KEY_FRESH_SECONDS / 2
        assert await clients.client() is first
        assert await clients.current_key() == (FIRST_KEY, "vault")
        assert len(reads) == 1  # within the second: not read again

        clock.now += KEY_FRESH_SECONDS / 2
        second = await clients.client()
        assert second is not first
        assert second.api_key == SECOND_KEY
        assert len(reads) == 2

        vault.remove_key("anthropic")
        clock.now += KEY_FRESH_SECONDS
        third = await clients.client()
        assert third.api_key == ENV_KEY  # the vault has none now: the environment's
        assert len(reads) == 3
    finally:
        await clients.close()

    used = await db.fetchall("SELECT event FROM audit_log WHERE event = 'key.use'")
    assert len(used) == 2  # one per client built from a vault key


async def test_a_key_missing_everywhere_is_refused_and_looked_for_again_a_second_later(
    vault: CredentialVault,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    upstream_pool: aiohttp.ClientSession,
) -> None:
    from agentspace_gateway.protocol.errors import GatewayError

    reads = count_reads(monkeypatch)
    clock = Clock()
    clients = clients_for(vault, db, clock, {}, upstream_pool)
    try:
        with pytest.raises(GatewayError) as refused:
            await clients.client()
        assert refused.value.code == "NO_API_KEY"
        vault.add_key("anthropic", FIRST_KEY)
        clock.now += KEY_FRESH_SECONDS
        assert (await clients.client()).api_key == FIRST_KEY
        assert len(reads) == 2
    finally:
        await clients.close()


async def test_the_sdk_client_is_built_off_the_event_loop_and_the_key_is_not_logged(
    vault: CredentialVault,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    upstream_pool: aiohttp.ClientSession,
) -> None:
    built_on: list[int] = []

    class RecordingAnthropic(client_module.AsyncAnthropic):
        # The real SDK client; only where it is constructed is noted.
        def __init__(self, **kwargs: Any) -> None:
            built_on.append(threading.get_ident())
            super().__init__(**kwargs)

    monkeypatch.setattr(client_module, "AsyncAnthropic", RecordingAnthropic)
    vault.add_key("anthropic", FIRST_KEY)
    clients = clients_for(vault, db, Clock(), {}, upstream_pool)
    caplog.set_level(logging.DEBUG)
    try:
        built = await clients.client()
    finally:
        await clients.close()

    assert isinstance(built, RecordingAnthropic)
    assert len(built_on) == 1
    assert built_on[0] != threading.get_ident()  # not the event loop's thread
    assert "Anthropic client ready (key from the vault)" in caplog.text
    assert FIRST_KEY not in caplog.text


@pytest.mark.parametrize(
    ("environ", "spans"),
    [
        ({}, False),
        ({"HOME": "/home/someone"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"}, True),
    ],
)
def test_the_sdk_builds_spans_only_in_a_process_set_up_for_opentelemetry(
    environ: dict[str, str], spans: bool
) -> None:
    telemetry = client_module.sdk_telemetry(environ)
    if spans:
        assert telemetry is None  # the SDK's default, which reads those variables
    else:
        assert telemetry == {"traces": {"enabled": False}, "propagation": False}
