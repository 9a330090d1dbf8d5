"""The first run, tried as a new user would, through the real ``serve`` process and commands.

No key and no vault: every place that speaks (/health, serve's log, chat.send's NO_API_KEY,
the terminal client) names a step that works from there, and following each step, exactly
as worded, makes chat work: the key in serve's environment, or a passphrase then
``keys add anthropic``. With a vault and no key, ``keys add anthropic`` alone is the step.
"""

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import FakeAnthropic
from processes import BIN, WAIT_SECONDS, free_port, gateway_env, running, wait_for_health_async

GATEWAY = str(BIN / "agentspace-gateway")
ENV_STEP = "ANTHROPIC_API_KEY=… agentspace-gateway serve"
VAULT_STEP = (
    "set AGENTSPACE_VAULT_PASSPHRASE to a long passphrase, run: "
    "agentspace-gateway keys add anthropic"
)
WITH_VAULT = "Anthropic API key not configured. Run: agentspace-gateway keys add anthropic"


async def run_command(
    argv: Sequence[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A command run without blocking the loop, on which the fake upstream answers."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), WAIT_SECONDS)
    assert process.returncode is not None
    return subprocess.CompletedProcess(list(argv), process.returncode, out.decode(), err.decode())


async def get_health(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/health") as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


@contextlib.asynccontextmanager
async def serving(env: dict[str, str], cwd: Path) -> AsyncIterator[tuple[int, list[str]]]:
    """A real ``serve``; yields its port and, once it has stopped, its stdout and stderr."""
    port = free_port()
    logs: list[str] = []
    with running([GATEWAY, "serve", "--port", str(port)], env, cwd) as process:
        await wait_for_health_async(port, process)
        try:
            yield port, logs
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.to_thread(process.communicate, timeout=WAIT_SECONDS)
            logs.extend([out, err])
    assert process.returncode == 0, logs


def chat_message(text: str) -> list[str]:
    return [GATEWAY, "chat", "--message", text]


def bare_environment(home: Path, base_url: str) -> dict[str, str]:
    """A new user's: no key, no passphrase, no keychain; the fake upstream as Anthropic."""
    return gateway_env(home, ANTHROPIC_BASE_URL=base_url, AGENTSPACE_ANTHROPIC_MAX_RETRIES="0")


async def test_no_key_and_no_vault_names_steps_that_work_from_there(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    bare = bare_environment(tmp_path / "home", base_url)

    async with serving(bare, tmp_path) as (port, logs):
        health = await get_health(port)
        refused = await run_command(chat_message("hello?"), bare, tmp_path)
        interactive = await run_command([GATEWAY, "chat"], bare, tmp_path, stdin="/quit\n")

    assert health["vault"] == "unavailable"
    assert health["providerKeys"] == {}
    hint = health["keyHint"]
    assert ENV_STEP in hint
    assert VAULT_STEP in hint
    assert "restart agentspace-gateway serve with AGENTSPACE_VAULT_PASSPHRASE still set" in hint
    # The same words everywhere: the error, the terminal client, serve's log.
    assert refused.returncode == 1
    assert refused.stderr == f"agentspace-gateway: {hint} (NO_API_KEY)\n"
    assert interactive.returncode == 0, interactive.stderr
    assert f"Before you chat: {hint}" in interactive.stderr
    assert f"chat will answer NO_API_KEY until a key is set. {hint}" in logs[1]
    assert fake.message_requests == []


async def test_the_environment_step_as_worded_makes_chat_work(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    bare = bare_environment(tmp_path / "home", base_url)
    with_key = {**bare, "ANTHROPIC_API_KEY": TEST_API_KEY}
    async with serving(with_key, tmp_path) as (port, logs):
        health = await get_health(port)
        answered = await run_command(chat_message("hello again"), bare, tmp_path)

    assert health["providerKeys"] == {"anthropic": "environment"}
    assert health["keyHint"] is None
    assert (answered.returncode, answered.stdout) == (0, "Hello, world!\n"), answered.stderr
    assert fake.message_requests[-1].api_key == TEST_API_KEY
    assert "anthropic key: from the environment" in logs[1]
    assert all(TEST_API_KEY not in text for text in (*logs, answered.stdout, answered.stderr))


async def test_the_vault_step_as_worded_makes_chat_work(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    bare = bare_environment(tmp_path / "home", base_url)

    # Following the hint without a gateway running: passphrase, then keys add on stdin.
    locked = {**bare, "AGENTSPACE_VAULT_PASSPHRASE": PASSPHRASE}
    added = await run_command(
        [GATEWAY, "keys", "add", "anthropic"], locked, tmp_path, stdin=TEST_API_KEY + "\n"
    )
    assert (added.returncode, added.stdout) == (0, "anthropic key stored\n"), added.stderr

    async with serving(locked, tmp_path) as (port, logs):
        health = await get_health(port)
        answered = await run_command(chat_message("from the vault"), bare, tmp_path)

    assert (health["vault"], health["vaultBackend"]) == ("available", "file")
    assert health["providerKeys"] == {"anthropic": "vault"}
    assert health["keyHint"] is None
    assert (answered.returncode, answered.stdout) == (0, "Hello, world!\n"), answered.stderr
    assert fake.message_requests[-1].api_key == TEST_API_KEY
    assert "anthropic key: from the vault" in logs[1]
    for text in (*logs, answered.stdout, answered.stderr, added.stdout, added.stderr):
        assert TEST_API_KEY not in text
        assert PASSPHRASE not in text


async def test_with_a_vault_and_no_key_keys_add_is_the_step_and_needs_no_restart(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    env = gateway_env(
        tmp_path / "home",
        PASSPHRASE,
        ANTHROPIC_BASE_URL=base_url,
        AGENTSPACE_ANTHROPIC_MAX_RETRIES="0",
    )
    async with serving(env, tmp_path) as (port, logs):
        before = await get_health(port)
        refused = await run_command(chat_message("anyone?"), env, tmp_path)
        other = await run_command(
            [GATEWAY, "keys", "add", "openai"], env, tmp_path, stdin="sk-openai-" + "x" * 40 + "\n"
        )
        assert other.returncode == 0, other.stderr
        added = await run_command(
            [GATEWAY, "keys", "add", "anthropic"], env, tmp_path, stdin=TEST_API_KEY + "\n"
        )
        assert added.returncode == 0, added.stderr
        after = await get_health(port)
        # The gateway reads the vault again at most a second after its last read (the
        # refused send); keys add, a process of its own, took longer than that.
        answered = await run_command(chat_message("now?"), env, tmp_path)

    assert (before["vault"], before["providerKeys"]) == ("available", {})
    assert before["keyHint"] == WITH_VAULT
    assert refused.stderr == f"agentspace-gateway: {WITH_VAULT} (NO_API_KEY)\n"
    assert f"chat will answer NO_API_KEY until a key is set. {WITH_VAULT}" in logs[1]
    assert after["providerKeys"] == {"anthropic": "vault", "openai": "vault"}
    assert after["keyHint"] is None
    assert (answered.returncode, answered.stdout) == (0, "Hello, world!\n"), answered.stderr
    assert fake.message_requests[-1].api_key == TEST_API_KEY


@pytest.mark.parametrize("where", ["before", "after"])
async def test_keys_add_reaches_the_home_given_with_home(tmp_path: Path, where: str) -> None:
    """The README's --home, on the command a first run needs, on either side of it."""
    home = tmp_path / "elsewhere"
    env = gateway_env(tmp_path / "default-home", PASSPHRASE)
    option = ["--home", str(home)]
    words = ["keys", "add", "anthropic"]
    argv = [GATEWAY, *option, *words] if where == "before" else [GATEWAY, *words, *option]
    added = await run_command(argv, env, tmp_path, stdin=TEST_API_KEY + "\n")
    assert added.returncode == 0, added.stderr
    assert (home / "vault.enc").exists()
    assert not (tmp_path / "default-home" / "vault.enc").exists()
