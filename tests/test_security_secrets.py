"""No secret at rest in plain text, nor in any log, after keys, chats and a token rotation.

Every file under the home (the database with its -wal and -shm, runtime.json, config.toml,
the vault and its lock) and every log line is searched for every key, token and the
passphrase: as text, and hex- or base64-encoded at any alignment. In-process with caplog
(which sees records before any redaction filter, so nothing may even try to log a secret),
and against a real ``serve`` subprocess at DEBUG.
"""

import asyncio
import base64
import binascii
import logging
import signal
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp import WSMsgType

from agentspace_gateway.config import AnthropicConfig, Config, GatewayConfig
from agentspace_gateway.home import Home
from agentspace_gateway.vault import CredentialVault

from chat_helpers import kinds, send_chat
from conftest import PASSPHRASE
from processes import BIN, free_port, gateway_env, running, wait_for_health_async
from proxy_helpers import issue
from wsclient import exchange

GATEWAY = str(BIN / "agentspace-gateway")
ANTHROPIC_KEY = "sk-ant-api03-" + "S3cr3tAtR3st" * 7
OPENAI_KEY = "sk-proj-" + "0penAiK3y" * 6


def encodings(secret: str) -> set[bytes]:
    """The secret's bytes, and as hex or base64 (standard or URL-safe) at any alignment."""
    raw = secret.encode()
    forms = {raw, binascii.hexlify(raw), binascii.hexlify(raw).upper()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw)
            # Drop the characters that also depend on the bytes around the secret.
            start = (shift * 8 + 5) // 6 if shift else 0
            forms.add(encoded[start : len(encoded) - 4])
    return forms


def leaks(secrets: Iterable[str], haystacks: dict[str, bytes]) -> list[str]:
    found = []
    for secret in secrets:
        for form in encodings(secret):
            for name, data in haystacks.items():
                if form in data:
                    found.append(f"{secret[:12]}... as {form[:16]!r} in {name}")
    return found


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The search itself can fail: every encoding it claims to cover is caught."""
    secret = "tok-" + "Zq9" * 15
    for shift in range(3):
        for data in (
            secret.encode(),
            binascii.hexlify(secret.encode()),
            base64.b64encode(b"x" * shift + secret.encode() + b"tail"),
            base64.urlsafe_b64encode(b"yy"[:shift] + secret.encode()),
        ):
            assert leaks([secret], {"file": b"prefix" + data + b"suffix"})
    assert not leaks([secret], {"file": b"nothing here " + secret[:-1].encode()})


async def test_nothing_secret_at_rest_or_in_logs_in_process(
    make_client,
    fake_anthropic,
    vault: CredentialVault,
    home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The SDK's own DEBUG too, although serve holds it at INFO (logging_setup): an earlier
    # test may have run configure_logging, and the scan must see the SDK's request logs.
    caplog.set_level(logging.DEBUG, logger="anthropic")
    fake, base_url = fake_anthropic
    (home.root / "config.toml").write_text('[context]\nsystem_prompt = "Be brief."\n')
    vault.add_key("anthropic", ANTHROPIC_KEY)
    vault.add_key("openai", OPENAI_KEY)
    config = Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0, timeout_seconds=5.0),
        gateway=GatewayConfig(require_token=True, token_check_seconds=0.1),
    )
    client = await make_client(config, logged_in=False)
    old = vault.get_token()
    assert old is not None

    # Chats on a connection that proved the token by header, with the key from the vault.
    ws = await client.ws_connect("/gateway", headers={"Authorization": f"Bearer {old}"})
    first = await send_chat(ws, "c1", "hello")
    second = await send_chat(ws, "c2", "again", sessionId=first[0]["sessionId"])
    assert kinds(first)[-1] == kinds(second)[-1] == "chat.stream.end"
    assert {r.api_key for r in fake.message_requests} == {ANTHROPIC_KEY}
    # The key server, with the token in the header and (wrongly) in the query string too.
    keys = await client.get(f"/keys/openai?token={old}", headers={"Authorization": f"Bearer {old}"})
    assert (await keys.json())["key"] == OPENAI_KEY
    assert (
        await client.get("/keys/anthropic", headers={"Authorization": "Bearer no"})
    ).status == 401
    # A Claude model through the OpenAI door, the one path that still sends through the
    # anthropic SDK (its translation), on a client key whose secret must not leak either.
    issued = await issue(client, "secrets-scan")
    sdk = openai.AsyncOpenAI(
        api_key=issued.secret, base_url=str(client.make_url("/v1")), max_retries=0
    )
    reply = await sdk.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    await sdk.close()
    assert reply.choices[0].message.content
    assert {r.api_key for r in fake.message_requests} == {ANTHROPIC_KEY}
    # First-frame auth, then rotation closes both connections.
    browser = await client.ws_connect("/gateway")
    assert await exchange(browser, {"type": "auth", "id": "a", "token": old}) == {"type": "auth.ok"}
    new = vault.rotate_token()
    for socket in (ws, browser):
        while (frame := await socket.receive(timeout=10)).type is not WSMsgType.CLOSE:
            pass
        assert frame.data == 4401
    async with client.ws_connect("/gateway", headers={"Authorization": f"Bearer {new}"}) as again:
        assert kinds(await send_chat(again, "c3", "after rotation"))[-1] == "chat.stream.end"

    secrets = [ANTHROPIC_KEY, OPENAI_KEY, old, new, PASSPHRASE, issued.secret]
    while_running = files_under(home.root)
    assert {"agentspace.db", "agentspace.db-wal", "config.toml", "vault.enc"} <= set(while_running)
    await client.close()
    after = files_under(home.root)
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    ).encode()

    assert leaks(secrets, {f"{n} (running)": d for n, d in while_running.items()}) == []
    assert leaks(secrets, after) == []
    assert leaks(secrets, {"caplog": logged}) == []
    # DEBUG really was captured, the SDK's own request and response logs included (from the
    # OpenAI door's translation; the chat sends on aiohttp itself, not through the SDK).
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(r.name.startswith("anthropic") for r in debug)
    assert len(debug) > 10
    assert mode(home.root) == 0o700
    assert mode(home.root / "vault.enc") == 0o600


async def cli(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> str:
    result = await asyncio.to_thread(
        subprocess.run,
        [GATEWAY, *args],
        input=stdin,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "sk-" not in result.stderr
    return result.stdout


async def test_nothing_secret_at_rest_or_in_logs_of_a_real_server(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    await cli(env, tmp_path, "keys", "add", "anthropic", stdin=ANTHROPIC_KEY + "\n")
    await cli(env, tmp_path, "keys", "add", "openai", stdin=OPENAI_KEY + "\n")
    old = (await cli(env, tmp_path, "token", "show")).strip()
    serve_env = {
        **env,
        "AGENTSPACE_LOGGING_LEVEL": "DEBUG",
        "AGENTSPACE_ANTHROPIC_BASE_URL": base_url,
        "AGENTSPACE_ANTHROPIC_MAX_RETRIES": "0",
        "AGENTSPACE_GATEWAY_REQUIRE_TOKEN": "true",
        "AGENTSPACE_GATEWAY_TOKEN_CHECK_SECONDS": "0.2",
    }
    url = f"http://127.0.0.1:{port}"

    with running([GATEWAY, "serve", "--port", str(port)], serve_env, tmp_path) as process:
        await wait_for_health_async(port, process)
        assert mode(home / "runtime.json") == 0o600
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{url}/gateway", headers={"Authorization": f"Bearer {old}"})
            assert kinds(await send_chat(ws, "c1", "hello"))[-1] == "chat.stream.end"
            async with http.get(
                f"{url}/keys/anthropic?key={old}", headers={"Authorization": f"Bearer {old}"}
            ) as response:
                assert (await response.json())["key"] == ANTHROPIC_KEY

            new = (await cli(env, tmp_path, "token", "rotate")).strip()
            while (frame := await ws.receive(timeout=10)).type is not WSMsgType.CLOSE:
                pass
            # The close frame's code: the client may see the TCP close before it replies.
            assert frame.data == 4401
            async with http.ws_connect(
                f"{url}/gateway", headers={"Authorization": f"Bearer {new}"}
            ) as again:
                assert kinds(await send_chat(again, "c2", "more"))[-1] == "chat.stream.end"
            while_running = files_under(home)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)

    assert process.returncode == 0, err
    assert {r.api_key for r in fake.message_requests} == {ANTHROPIC_KEY}
    assert "GET /keys/anthropic?key=[REDACTED]" in err
    assert "DEBUG" in err
    assert "its token was rotated" in err
    secrets = [ANTHROPIC_KEY, OPENAI_KEY, old, new, PASSPHRASE]
    assert leaks(secrets, {"stdout": out.encode(), "stderr": err.encode()}) == []
    assert leaks(secrets, while_running) == []
    assert leaks(secrets, files_under(home)) == []
    assert mode(home) == 0o700
    assert mode(home / "vault.enc") == 0o600
