"""The real anthropic SDK (async and sync) through the gateway's Anthropic API to the fake.

Each test checks what reached the fake (the body unchanged, beta headers verbatim, the
provider key and never the client key) and what the ledger kept, to the nano-dollar.
"""

import asyncio
import json

import anthropic
import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.proxy.routes import PROXY

from fake_anthropic import Scenario
from proxy_helpers import (
    CACHE_READ_NANOS,
    CACHE_WRITE_NANOS,
    INPUT_NANOS,
    MODEL,
    OUTPUT_NANOS,
    PROVIDER_KEY,
    Proxied,
    proxied_gateway,
)

BETAS = ["context-management-2025-06-27", "a-beta-the-gateway-has-never-heard-of-2099-01-01"]


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    return await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)


def sdk(proxied: Proxied) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=proxied.key.secret, base_url=proxied.base_url, max_retries=0
    )


def assert_provider_key_only(proxied: Proxied) -> None:
    for received in proxied.fake.requests:
        assert received.headers["x-api-key"] == PROVIDER_KEY
        assert "authorization" not in received.headers
        assert proxied.key.secret not in json.dumps(received.headers)


async def test_a_message_arrives_unchanged_and_is_billed_to_the_nano_dollar(
    proxied: Proxied,
) -> None:
    proxied.fake.enqueue(
        Scenario(
            text_chunks=["Hi"],
            input_tokens=1000,
            output_tokens=200,
            cache_read_input_tokens=4000,
            cache_creation_input_tokens=100,
        )
    )
    extra = {
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "output_config": {"effort": "high"},
        "an_unknown_field": [1, {"nested": None}],
    }
    system = [
        {"type": "text", "text": "first block"},
        {"type": "text", "text": "second", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    async with sdk(proxied) as client:
        raw = await client.messages.with_raw_response.create(
            model=MODEL,
            max_tokens=64,
            system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "Hello"}],
            extra_body=extra,
            extra_headers={"anthropic-beta": ",".join(BETAS), "anthropic-version": "2099-12-31"},
        )
        message = await raw.parse()
    assert message.content[0].text == "Hi"  # type: ignore[union-attr]

    (received,) = proxied.fake.message_requests
    assert received.json["system"] == system
    for name, value in extra.items():
        assert received.json[name] == value
    assert received.headers["anthropic-beta"] == ",".join(BETAS)
    assert received.headers["anthropic-version"] == "2099-12-31"
    assert_provider_key_only(proxied)

    expected = 1000 * INPUT_NANOS + 200 * OUTPUT_NANOS + 4000 * CACHE_READ_NANOS
    expected += 100 * CACHE_WRITE_NANOS  # 3,000,000 + 3,000,000 + 1,200,000 + 375,000
    assert expected == 7_575_000
    assert raw.headers["x-agentspace-cost-nanos"] == str(expected)
    assert raw.headers["x-agentspace-cost-usd"] == "0.007575"
    assert raw.headers["request-id"].startswith("req_fake")
    row = proxied.usage_row(raw.headers["x-agentspace-request-id"])
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 200)
    assert (row["cache_read_input_tokens"], row["cache_creation_input_tokens"]) == (4000, 100)
    assert row["cost_nanousd"] == expected
    assert row["stop_reason"] == "end_turn"
    assert row["client_key_id"] == proxied.key.client.id


async def test_raw_bytes_go_upstream_byte_for_byte(proxied: Proxied) -> None:
    body = (
        b'{"model": "claude-sonnet-4-5",  "max_tokens":8,"messages":[{"role":"user",'
        b'"content":"caf\\u00e9"}],"zzz_future":{"b":1,"a":2}, "thinking":{"type":"enabled",'
        b'"budget_tokens":1024}}'
    )
    response = await proxied.client.post(
        "/v1/messages?beta=true",
        data=body,
        headers={
            "x-api-key": proxied.key.secret,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "weird-beta-1, weird-beta-2",
            "content-type": "application/json",
            "x-stainless-lang": "js",
            "cookie": "session=secret",
        },
    )
    assert response.status == 200
    (received,) = proxied.fake.message_requests
    assert received.body == body
    assert received.query == "beta=true"
    assert received.headers["anthropic-beta"] == "weird-beta-1, weird-beta-2"
    assert "x-stainless-lang" not in received.headers
    assert "cookie" not in received.headers


async def test_a_streamed_tool_use_and_thinking_reach_the_sdk_whole(proxied: Proxied) -> None:
    proxied.fake.enqueue(
        Scenario(
            text_chunks=["Done", "."],
            input_tokens=50,
            output_tokens=30,
            blocks=[
                {"type": "thinking", "thinking": ["Let me ", "think."], "signature": "sig=="},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input_json": ['{"city": "Par', 'is", "days": ', "3}"],
                },
            ],
        )
    )
    async with (
        sdk(proxied) as client,
        client.messages.stream(
            model=MODEL,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": "Weather?"}],
            extra_headers={"x-claude-code-session-id": "cc-session-1"},
        ) as stream,
    ):
        message = await stream.get_final_message()
        request_id = stream.response.headers["x-agentspace-request-id"]
    thinking, tool, text = message.content
    assert (thinking.type, thinking.thinking, thinking.signature) == (  # type: ignore[union-attr]
        "thinking",
        "Let me think.",
        "sig==",
    )
    assert tool.input == {"city": "Paris", "days": 3}  # type: ignore[union-attr]
    assert text.text == "Done."  # type: ignore[union-attr]
    assert message.usage.output_tokens == 30

    row = proxied.usage_row(request_id)
    assert (row["input_tokens"], row["output_tokens"]) == (50, 30)
    assert row["cost_nanousd"] == 50 * INPUT_NANOS + 30 * OUTPUT_NANOS
    assert row["stop_reason"] == "end_turn"
    origins = proxied.client.app[PROXY].origins
    session = await origins.find(proxied.key.client.id, "cc-session-1")
    assert session is not None
    assert row["session_id"] == session.id


async def test_create_stream_true_yields_every_event(proxied: Proxied) -> None:
    proxied.fake.enqueue(Scenario(text_chunks=["a", "b", "c"], input_tokens=10))
    async with sdk(proxied) as client:
        events = await client.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "x"}],
            stream=True,
        )
        kinds = [event.type async for event in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    totals = await proxied.client.app[appkeys.USAGE_LEDGER].totals_by_model()
    assert totals[MODEL].cost_nanousd == 10 * INPUT_NANOS + 3 * OUTPUT_NANOS


async def test_the_sync_sdk_in_a_thread(proxied: Proxied) -> None:
    proxied.fake.enqueue(
        Scenario(text_chunks=["one"], input_tokens=7, output_tokens=2),
        Scenario(text_chunks=["two", "!"], input_tokens=9, output_tokens=3),
    )

    def use_sync_client() -> tuple[str, str]:
        with anthropic.Anthropic(
            api_key=proxied.key.secret, base_url=proxied.base_url, max_retries=0
        ) as client:
            first = client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "1"}]
            )
            with client.messages.stream(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "2"}]
            ) as stream:
                second = stream.get_final_text()
        return first.content[0].text, second  # type: ignore[union-attr]

    assert await asyncio.to_thread(use_sync_client) == ("one", "two!")
    totals = await proxied.client.app[appkeys.USAGE_LEDGER].totals_by_model()
    assert totals[MODEL].request_count == 2
    assert totals[MODEL].cost_nanousd == 16 * INPUT_NANOS + 5 * OUTPUT_NANOS
    assert_provider_key_only(proxied)


async def test_count_tokens_is_forwarded_and_not_billed(proxied: Proxied) -> None:
    async with sdk(proxied) as client:
        counted = await client.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": "x" * 40}]
        )
    assert counted.input_tokens == 11
    assert [r.path for r in proxied.fake.requests] == ["/v1/messages/count_tokens"]
    assert_provider_key_only(proxied)
    assert proxied.rows("SELECT * FROM usage_records") == []


async def test_models_are_listed_in_pages_without_going_upstream(proxied: Proxied) -> None:
    async with sdk(proxied) as client:
        everything = [model.id async for model in client.models.list(limit=3)]
        first_page = await client.models.list(limit=2)
        after = await client.models.list(limit=2, after_id=first_page.data[-1].id)
        before = await client.models.list(limit=1, before_id=after.data[0].id)
        one = await client.models.retrieve(MODEL)
    assert MODEL in everything
    assert len(everything) == len(set(everything)) > 3
    assert [m.id for m in first_page.data] == everything[:2]
    assert first_page.has_more
    assert [m.id for m in after.data] == everything[2:4]
    assert [m.id for m in before.data] == everything[1:2]
    assert one.id == MODEL
    assert proxied.fake.requests == []


async def test_head_of_the_base_url_answers(proxied: Proxied) -> None:
    response = await proxied.client.head("/")
    assert response.status == 200


async def test_other_v1_routes_are_not_forwarded(proxied: Proxied) -> None:
    async with sdk(proxied) as client:
        with pytest.raises(anthropic.NotFoundError) as refused:
            await client.messages.batches.list()
    assert "does not serve GET /v1/messages/batches" in str(refused.value)
    assert proxied.fake.requests == []


async def test_one_hour_cache_writes_are_billed_at_their_own_price(proxied: Proxied) -> None:
    # 300 cache writes, 200 of them for one hour: 100 x $3.75 + 200 x $6 per MTok.
    proxied.fake.enqueue(
        Scenario(
            input_tokens=10,
            output_tokens=1,
            cache_creation_input_tokens=300,
            cache_creation_1h_input_tokens=200,
        )
    )
    async with (
        sdk(proxied) as client,
        client.messages.stream(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        await stream.get_final_message()
        request_id = stream.response.headers["x-agentspace-request-id"]
    row = proxied.usage_row(request_id)
    assert (row["cache_creation_input_tokens"], row["cache_creation_1h_input_tokens"]) == (300, 200)
    expected = 10 * INPUT_NANOS + 1 * OUTPUT_NANOS + 100 * CACHE_WRITE_NANOS + 200 * 6000
    assert expected == 30_000 + 15_000 + 375_000 + 1_200_000
    assert row["cost_nanousd"] == expected
