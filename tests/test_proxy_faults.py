"""Upstream errors, stalls and drops, a client that leaves, a key revoked mid-stream: what
the client gets, and what was billed kept."""

import asyncio
import json
import re

import aiohttp
import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.proxy.routes import PROXY
from agentspace_gateway.storage.client_keys import ClientKeyRepository

from fake_anthropic import Scenario
from proxy_helpers import (
    INPUT_NANOS,
    MODEL,
    OUTPUT_NANOS,
    PROVIDER_KEY,
    Proxied,
    issue,
    proxy_config,
)

MESSAGE_ID = re.compile(rb"msg_fake[0-9a-f]+")
STREAM = {
    "model": MODEL,
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    config = proxy_config(base_url, key_check_seconds=0.1)
    config = config.__class__(
        anthropic=config.anthropic.__class__(base_url=base_url, timeout_seconds=0.5),
        proxy=config.proxy,
    )
    client = await make_client(config)
    return Proxied(client, fake, await issue(client, "laptop"), home)


def headers(proxied: Proxied) -> dict[str, str]:
    return {"x-api-key": proxied.key.secret, "anthropic-version": "2023-06-01"}


def events(raw: bytes) -> list[str]:
    return [line[7:] for line in raw.decode().splitlines() if line.startswith("event: ")]


@pytest.mark.parametrize("status", [429, 529, 500, 400])
async def test_upstream_errors_come_back_verbatim(proxied: Proxied, status: int) -> None:
    proxied.fake.enqueue(Scenario.error(status, retry_after="7"))
    for body in (STREAM, {**STREAM, "stream": False}):
        if body is not STREAM:
            proxied.fake.enqueue(Scenario.error(status, retry_after="7"))
        response = await proxied.client.post("/v1/messages", json=body, headers=headers(proxied))
        assert response.status == status
        payload = await response.read()
        sent = json.loads(payload)
        assert sent["type"] == "error"
        assert response.headers["request-id"] == sent["request_id"]
        assert response.headers["retry-after"] == "7"
        assert "x-agentspace-cost-nanos" not in response.headers
    assert proxied.rows("SELECT * FROM usage_records") == []


async def test_the_byte_stream_is_relayed_unchanged(proxied: Proxied) -> None:
    scenario = Scenario(text_chunks=["x", "\u00e9\n", "{}"] * 7, input_tokens=5)
    proxied.fake.enqueue(scenario, scenario)
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        relayed = await r.read()
    async with (
        aiohttp.ClientSession() as direct,
        direct.post(
            proxied.fake_url + "/v1/messages",
            json=STREAM,
            headers={"x-api-key": PROVIDER_KEY, "anthropic-version": "2023-06-01"},
        ) as d,
    ):
        straight = await d.read()
    # Only the message id differs: the fake makes a fresh one per reply.
    (relayed_id,) = MESSAGE_ID.findall(relayed)
    (straight_id,) = MESSAGE_ID.findall(straight)
    assert relayed.replace(relayed_id, straight_id) == straight
    assert len(events(relayed)) == 3 + 21 + 3  # start, block start, ping; stop, delta, stop


@pytest.mark.parametrize("size", [1, 30_000])
async def test_a_stream_whatever_its_first_read_holds_is_relayed_whole_and_billed(
    proxied: Proxied, size: int
) -> None:
    # The first data that came with the headers is relayed before the pump starts when it is
    # small, by the pump when it is not (past 16 KiB); each way every byte goes out once,
    # in order, and every event is billed.
    proxied.fake.enqueue(Scenario(text_chunks=["y" * size] * 3, input_tokens=12))
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        raw = await r.read()
        request_id = r.headers["x-agentspace-request-id"]
    assert events(raw) == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert raw.count(b'"text":"' + b"y" * size + b'"') == 3
    row = proxied.usage_row(request_id)
    assert (row["input_tokens"], row["output_tokens"]) == (12, 3)
    assert row["cost_nanousd"] == 12 * INPUT_NANOS + 3 * OUTPUT_NANOS
    assert row["stop_reason"] == "end_turn"


async def test_an_upstream_drop_mid_stream_ends_with_an_error_event_and_keeps_the_bill(
    proxied: Proxied,
) -> None:
    proxied.fake.enqueue(Scenario(text_chunks=["a", "b", "c"], input_tokens=40, drop_after=2))
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        raw = await r.read()
        request_id = r.headers["x-agentspace-request-id"]
    assert events(raw)[-1] == "error"
    assert "upstream stream failed" in raw.decode().splitlines()[-2]
    row = proxied.usage_row(request_id)
    # message_start's report: the input side, and one output token so far.
    assert (row["input_tokens"], row["output_tokens"]) == (40, 1)
    assert row["cost_nanousd"] == 40 * INPUT_NANOS + 1 * OUTPUT_NANOS
    assert row["stop_reason"] == "upstream_dropped"


async def test_a_stall_mid_stream_times_out_and_keeps_the_bill(proxied: Proxied) -> None:
    proxied.fake.enqueue(Scenario(text_chunks=["a", "b"], input_tokens=12, stall_after=1))
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        raw = await r.read()
        request_id = r.headers["x-agentspace-request-id"]
    assert events(raw)[-1] == "error"
    row = proxied.usage_row(request_id)
    assert row["input_tokens"] == 12
    assert row["stop_reason"] == "upstream_dropped"


async def test_an_upstream_error_event_is_relayed_and_billed(proxied: Proxied) -> None:
    proxied.fake.enqueue(Scenario(text_chunks=["a", "b"], input_tokens=9, error_event_after=1))
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        raw = await r.read()
        request_id = r.headers["x-agentspace-request-id"]
    assert b'"type":"overloaded_error"' in raw
    assert proxied.usage_row(request_id)["stop_reason"] == "upstream_error"


async def test_a_client_leaving_mid_stream_closes_upstream_and_keeps_the_bill(
    proxied: Proxied,
) -> None:
    proxied.fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=33))
    response = await proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied))
    request_id = response.headers["x-agentspace-request-id"]
    await response.content.readuntil(b"content_block_delta")
    response.close()
    await proxied.fake.wait_for_disconnect(timeout=5.0)
    for _ in range(250):
        rows = proxied.rows("SELECT * FROM usage_records WHERE request_id = ?", (request_id,))
        if rows and rows[0]["stop_reason"] != "in_progress":
            break
        await asyncio.sleep(0.02)
    assert rows[0]["input_tokens"] == 33
    assert rows[0]["stop_reason"] == "client_gone"
    assert rows[0]["client_key_id"] == proxied.key.client.id


async def test_revoking_a_key_closes_its_open_stream(proxied: Proxied) -> None:
    proxied.fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=21))
    async with proxied.client.post("/v1/messages", json=STREAM, headers=headers(proxied)) as r:
        request_id = r.headers["x-agentspace-request-id"]
        await r.content.readuntil(b"content_block_delta")
        await ClientKeyRepository(proxied.client.app[appkeys.DATABASE]).revoke("laptop")
        raw = await asyncio.wait_for(r.read(), 5.0)
    assert events(raw)[-1] == "error"
    assert b"stream closed by the gateway: client_key_revoked" in raw
    await proxied.fake.wait_for_disconnect(timeout=5.0)
    row = proxied.usage_row(request_id)
    assert (row["input_tokens"], row["stop_reason"]) == (21, "client_key_revoked")
    # Recorded once the handler has ended, which may be just after the client read the end.
    expected = f"client laptop: open stream {request_id} closed, key revoked; POST /v1/messages"
    closed: list[str | None] = []
    for _ in range(250):
        await proxied.client.app[PROXY].auth.flush()
        audit = await proxied.client.app[appkeys.AUDIT_LOG].recent()
        closed = [entry.detail for entry in audit if entry.event == "client.stream_closed"]
        if closed:
            break
        await asyncio.sleep(0.02)
    assert closed == [expected]
