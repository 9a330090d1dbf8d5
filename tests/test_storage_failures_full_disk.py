"""A real ``serve`` whose disk fills while it runs (a tmpfs in a mount namespace of its own):
every door says the disk is full, where, and how much is free; none says to move the
database aside, which would free nothing and set the ledger's history adrift."""

import signal
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fake_anthropic import FakeAnthropic
from processes import WAIT_SECONDS, free_port, gateway_env, running, wait_for_health_async
from proxy_helpers import MODEL
from storage_failure_helpers import (
    GATEWAY,
    PASSPHRASE,
    fill,
    in_tiny_filesystem,
    seed_home,
    seen_from_outside,
)

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def says_disk_full(message: str, mount: Path) -> None:
    assert f"The disk holding {mount}/home/agentspace.db is full" in message
    assert f"Free space on {mount} (0 bytes free)" in message
    assert "move the file aside" not in message
    assert "handler failed" not in message


async def test_every_door_says_the_disk_is_full(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    _, base_url = fake_anthropic
    seed, mount = tmp_path / "seed", tmp_path / "mnt"
    mount.mkdir()
    token, client_key = await seed_home(seed)
    (seed / "config.toml").write_text(f'[anthropic]\nbase_url = "{base_url}"\nmax_retries = 0\n')
    port = free_port()
    argv = in_tiny_filesystem([GATEWAY, "serve", "--port", str(port)], mount, "2m", seed)
    env = gateway_env(mount / "home", PASSPHRASE, ANTHROPIC_API_KEY="sk-ant-api03-test")
    url = f"http://127.0.0.1:{port}"
    with running(argv, env, tmp_path) as process:
        await wait_for_health_async(port, process)
        assert fill(seen_from_outside(process.pid, mount / "home")) > 0

        async with aiohttp.ClientSession() as http:
            bearer = {"Authorization": f"Bearer {token}"}
            async with http.ws_connect(f"{url}/gateway", headers=bearer) as ws:
                await ws.send_json({"type": "chat.send", "id": "c1", "content": "hello"})
                error = await ws.receive_json(timeout=WAIT_SECONDS)
            async with http.get(f"{url}/keys/anthropic", headers=bearer) as response:
                keys_status, keys_body = response.status, await response.json()

        assert (error["type"], error["code"]) == ("error", "STORAGE_UNAVAILABLE")
        assert error["details"]["kind"] == "disk_full"
        says_disk_full(error["message"], mount)
        assert keys_status == 503
        assert (keys_body["error"]["code"], keys_body["error"]["kind"]) == (
            "STORAGE_UNAVAILABLE",
            "disk_full",
        )
        says_disk_full(keys_body["error"]["message"], mount)

        async with anthropic.AsyncAnthropic(api_key=client_key, base_url=url, max_retries=0) as sdk:
            with pytest.raises(anthropic.InternalServerError) as refused:
                await sdk.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
        body: Any = refused.value.body
        assert (refused.value.status_code, body["error"]["type"]) == (503, "api_error")
        says_disk_full(body["error"]["message"], mount)
        async with openai.AsyncOpenAI(
            api_key=client_key, base_url=f"{url}/v1", max_retries=0
        ) as sdk_openai:
            with pytest.raises(openai.InternalServerError) as failed:
                await sdk_openai.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert (failed.value.status_code, failed.value.code) == (503, "storage_unavailable")
        says_disk_full(failed.value.message, mount)

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=WAIT_SECONDS)
    # The log says it in one line a failure, not a traceback.
    assert "Traceback" not in stderr, stderr
    assert "is full" in stderr
