"""The Anthropic API door of a real ``serve`` process: a served gateway does not cancel the
handler of a client that left, so these prove the stream watcher ends such streams, a key
revoked by the CLI in another process closes open streams, and shutdown bills what is open."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fake_anthropic import Scenario
from reliability_helpers import Gateway, db_rows, gateway_running, run_cli, wait_for_exit

STREAM = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture
async def served(tmp_path: Path, fake_anthropic) -> AsyncIterator[tuple[Gateway, str]]:  # type: ignore[no-untyped-def]
    _, base_url = fake_anthropic
    home, workdir = tmp_path / "home", tmp_path / "work"
    workdir.mkdir()
    added = run_cli(home, workdir, "clients", "add", "laptop")
    assert added.returncode == 0, added.stderr
    key = added.stdout.splitlines()[0]
    async with gateway_running(
        home, workdir, base_url, AGENTSPACE_PROXY_KEY_CHECK_SECONDS="0.1"
    ) as gateway:
        yield gateway, key


def headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.port}/v1/messages"


async def row_when_settled(gateway: Gateway, request_id: str) -> dict[str, object]:
    database = gateway.home / "agentspace.db"
    for _ in range(500):
        rows = db_rows(database, "SELECT * FROM usage_records WHERE request_id = ?", (request_id,))
        if rows and rows[0]["stop_reason"] != "in_progress":
            return dict(rows[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"the row of {request_id} was not settled")


async def test_a_client_leaving_during_an_upstream_stall_closes_it(
    served: tuple[Gateway, str], fake_anthropic
) -> None:  # type: ignore[no-untyped-def]
    gateway, key = served
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["a", "b"], input_tokens=44, stall_after=1))
    async with aiohttp.ClientSession() as http:
        response = await http.post(url(gateway), json=STREAM, headers=headers(key))
        request_id = response.headers["x-agentspace-request-id"]
        assert response.status == 200, await response.text()
        await response.content.readuntil(b"text_delta")
        response.close()
    # Nothing is written while upstream stalls: only the watcher can see the client go.
    await fake.wait_for_disconnect(timeout=5.0)
    row = await row_when_settled(gateway, request_id)
    assert (row["input_tokens"], row["stop_reason"]) == (44, "client_gone")


async def test_revoking_with_the_cli_closes_the_open_stream(
    served: tuple[Gateway, str], fake_anthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    gateway, key = served
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=17))
    async with aiohttp.ClientSession() as http:
        response = await http.post(url(gateway), json=STREAM, headers=headers(key))
        request_id = response.headers["x-agentspace-request-id"]
        assert response.status == 200, await response.text()
        await response.content.readuntil(b"text_delta")
        revoked = await asyncio.to_thread(
            run_cli, gateway.home, tmp_path / "work", "clients", "revoke", "laptop"
        )
        assert revoked.returncode == 0, revoked.stderr
        rest = await asyncio.wait_for(response.read(), 10.0)
        assert b"stream closed by the gateway: client_key_revoked" in rest
        again = await http.post(url(gateway), json=STREAM, headers=headers(key))
        assert again.status == 401
    row = await row_when_settled(gateway, request_id)
    assert (row["input_tokens"], row["stop_reason"]) == (17, "client_key_revoked")


async def test_shutdown_ends_open_streams_and_bills_them(
    served: tuple[Gateway, str], fake_anthropic
) -> None:  # type: ignore[no-untyped-def]
    gateway, key = served
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=23))
    async with aiohttp.ClientSession() as http:
        response = await http.post(url(gateway), json=STREAM, headers=headers(key))
        request_id = response.headers["x-agentspace-request-id"]
        assert response.status == 200, await response.text()
        await response.content.readuntil(b"text_delta")
        gateway.process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(response.read(), 10.0)
    assert b"stream closed by the gateway: shutdown" in rest
    assert await wait_for_exit(gateway) == 0
    rows = db_rows(
        gateway.home / "agentspace.db",
        "SELECT * FROM usage_records WHERE request_id = ?",
        (request_id,),
    )
    assert (rows[0]["input_tokens"], rows[0]["stop_reason"]) == (23, "shutdown")
