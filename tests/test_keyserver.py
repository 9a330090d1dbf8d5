"""The key server over real HTTP: health, the bearer-token matrix, audit rows, redaction."""

import logging
import os
import sqlite3

import pytest

from agentspace_gateway.config import Config, ServerConfig
from agentspace_gateway.home import Home
from agentspace_gateway.vault import PROVIDERS, CredentialVault

API_KEY = "sk-ant-api03-" + "x7Qm" * 20


def audit_rows(home: Home) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM audit_log ORDER BY id").fetchall()


async def test_health_reports_process_and_vault(client) -> None:
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["pid"] == os.getpid()
    assert body["version"]
    assert 0 <= body["uptimeSeconds"] < 60
    assert body["vault"] == "available"
    assert body["vaultBackend"] == "file"


async def test_stored_key_is_served_to_the_token_holder(
    client, vault: CredentialVault, home
) -> None:
    vault.add_key("anthropic", API_KEY)
    token = vault.get_token()
    assert token is not None

    response = await client.get(
        "/keys/anthropic", headers={"Authorization": f"Bearer {token}", "User-Agent": "probe/1"}
    )

    assert response.status == 200
    assert await response.json() == {"provider": "anthropic", "key": API_KEY}
    assert response.headers["Cache-Control"] == "no-store"
    last = audit_rows(home)[-1]
    assert (last["event"], last["provider"], last["remote_addr"], last["user_agent"]) == (
        "key.access",
        "anthropic",
        "127.0.0.1",
        "probe/1",
    )


@pytest.mark.parametrize(
    ("authorization", "invalid_token"),
    [
        (None, False),
        ("Basic dXNlcjpwYXNz", False),
        ("Bearer", False),
        ("Bearer wrong-token", True),
        ("Bearer {token}x", True),
        ("Bearer {token_prefix}", True),
        ("Bearer \u00e9t\u00e9", True),
    ],
)
async def test_bad_credentials_get_401_and_an_audit_row(
    client, vault: CredentialVault, home, authorization: str | None, invalid_token: bool
) -> None:
    vault.add_key("anthropic", API_KEY)
    token = vault.get_token()
    assert token is not None
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token, token_prefix=token[:-3])

    response = await client.get("/keys/anthropic", headers=headers)

    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="agentspace-gateway"')
    assert ('error="invalid_token"' in challenge) is invalid_token
    body = await response.json()
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert API_KEY not in await response.text()
    denied = audit_rows(home)[-1]
    assert denied["event"] == "access.denied"
    assert denied["provider"] == "anthropic"
    assert denied["remote_addr"] == "127.0.0.1"
    assert denied["detail"]


async def test_unknown_provider_is_404_naming_valid_ones(client, vault: CredentialVault) -> None:
    token = vault.get_token()
    response = await client.get("/keys/mistral", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "UNKNOWN_PROVIDER"
    assert error["validProviders"] == list(PROVIDERS)
    assert "anthropic" in error["message"]


async def test_missing_key_is_404_saying_how_to_add_it(
    client, vault: CredentialVault, home
) -> None:
    token = vault.get_token()
    response = await client.get("/keys/openai", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "KEY_NOT_FOUND"
    assert "agentspace-gateway keys add openai" in error["message"]
    assert audit_rows(home)[-1]["event"] == "key.not_found"


async def test_no_vault_still_serves_health_and_answers_503(make_client, home) -> None:
    client = await make_client()  # no passphrase and no keychain on this "machine"

    health = await (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["vault"] == "unavailable"
    assert health["vaultBackend"] is None

    response = await client.get("/keys/anthropic", headers={"Authorization": "Bearer anything"})
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "VAULT_UNAVAILABLE"
    assert "AGENTSPACE_VAULT_PASSPHRASE" in error["message"]
    assert audit_rows(home)[-1]["event"] == "key.unavailable"


async def test_token_is_created_on_first_start_and_audited(
    client, vault: CredentialVault, home
) -> None:
    token = vault.get_token()
    assert token is not None
    assert len(token) >= 43  # 256 bits, url-safe base64
    assert [row["event"] for row in audit_rows(home)] == ["token.create"]


async def test_rotated_token_takes_effect_without_restart(client, vault: CredentialVault) -> None:
    vault.add_key("anthropic", API_KEY)
    old = vault.get_token()
    new = vault.rotate_token()

    stale = await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {old}"})
    fresh = await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {new}"})

    assert stale.status == 401
    assert fresh.status == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:3271",
        "evil.example",
        "127.evil.example",
        "localhost.evil.example:80",
        "[::2]:3271",
        "10.0.0.1:3271",
        "127.0.0.1:notaport",
        "[::1",
    ],
)
@pytest.mark.parametrize("path", ["/health", "/keys/anthropic", "/gateway"])
async def test_foreign_host_header_is_refused_with_421(client, host: str, path: str) -> None:
    response = await client.get(path, headers={"Host": host})
    assert response.status == 421
    assert (await response.json())["error"]["code"] == "MISDIRECTED_REQUEST"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:3271", "localhost", "LOCALHOST:1", "[::1]:3271", "127.0.0.2"]
)
async def test_loopback_host_headers_pass(client, host: str) -> None:
    response = await client.get("/health", headers={"Host": host})
    assert response.status == 200


async def test_configured_host_names_pass(make_client, passphrase) -> None:
    config = Config(server=ServerConfig(allowed_hosts=("gateway.lan",)))
    client = await make_client(config)
    assert (await client.get("/health", headers={"Host": "gateway.lan:3271"})).status == 200
    assert (await client.get("/health", headers={"Host": "other.lan"})).status == 421


async def test_unknown_route_is_a_json_404(client) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "NOT_FOUND"


async def test_access_log_never_holds_the_token(
    client, vault: CredentialVault, caplog: pytest.LogCaptureFixture
) -> None:
    vault.add_key("anthropic", API_KEY)
    token = vault.get_token()
    assert token is not None
    with caplog.at_level(logging.DEBUG):
        await client.get(
            f"/keys/anthropic?token={token}", headers={"Authorization": f"Bearer {token}"}
        )
        await client.get("/keys/anthropic", headers={"Authorization": f"Bearer {token}"})

    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) == 2
    assert "/keys/anthropic?token=[REDACTED]" in access[0]
    everything = caplog.text + "".join(access)
    assert token not in everything
    assert API_KEY not in everything
