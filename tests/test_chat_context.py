"""context.inspect and usage.query over real exchanges with the fake upstream."""

import pytest

from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.home import Home
from agentspace_gateway.tokens import TokenEstimator

from chat_helpers import query, send_chat
from fake_anthropic import Scenario
from wsclient import exchange

SYSTEM_PROMPT = "You are a helpful AI assistant."


async def test_inspection_shows_the_five_sections_with_their_numbers(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=["Paris is the capital."], input_tokens=30))
    estimator = TokenEstimator()
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(
            ws, "a", "What is the capital of France? Ünïcödé", model="claude-sonnet-4-6"
        )
        session_id = frames[0]["sessionId"]
        inspection = await exchange(
            ws, {"type": "context.inspect", "id": "i", "sessionId": session_id}
        )

    assert inspection["requestId"] == "i"
    assert inspection["sessionId"] == session_id
    assert inspection["model"] == "claude-sonnet-4-6"
    sections = {s["name"]: s for s in inspection["sections"]}
    assert list(sections) == ["system_prompt", "history", "memory", "skills", "tools"]
    system = sections["system_prompt"]
    assert system["content"] == SYSTEM_PROMPT
    assert system["byteCount"] == len(SYSTEM_PROMPT.encode())
    assert system["tokenEstimate"] == estimator.count(SYSTEM_PROMPT)
    history = sections["history"]
    assert history["content"] == (
        "user: What is the capital of France? Ünïcödé\n\nassistant: Paris is the capital."
    )
    assert history["byteCount"] == len(history["content"].encode("utf-8"))
    assert history["tokenEstimate"] == estimator.count(
        "What is the capital of France? Ünïcödé"
    ) + estimator.count("Paris is the capital.")
    # $3 per million input tokens for claude-sonnet-4-6.
    assert history["costEstimate"] == pytest.approx(history["tokenEstimate"] * 3e-6)
    # Exactly: $3 per MTok is 3,000 nano-dollars a token.
    assert history["costEstimateNanos"] == history["tokenEstimate"] * 3_000
    for empty in ("memory", "skills", "tools"):
        assert sections[empty] | {"name": "x"} == {
            "name": "x",
            "content": "",
            "byteCount": 0,
            "tokenEstimate": 0,
            "costEstimate": 0.0,
            "costEstimateNanos": 0,
        }
    totals = inspection["totals"]
    assert totals["byteCount"] == sum(s["byteCount"] for s in sections.values())
    assert totals["tokenEstimate"] == sum(s["tokenEstimate"] for s in sections.values())
    [row] = query(home, "SELECT estimated_input_tokens FROM usage_records")
    assert inspection["estimateRatio"] == pytest.approx(30 / row["estimated_input_tokens"])
    assert "exactInputTokens" not in inspection


async def test_inspection_reads_stored_estimates_not_the_history_again(
    chat_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with chat_client.ws_connect("/gateway") as ws:
        session_id = (await send_chat(ws, "a", "a message worth counting"))[0]["sessionId"]
        counted: list[str] = []
        estimator = chat_client.server.app[CHAT].estimator
        original = estimator.count_async

        async def spy(text: str) -> int:
            counted.append(text)
            return await original(text)

        monkeypatch.setattr(estimator, "count_async", spy)
        inspection = await exchange(
            ws, {"type": "context.inspect", "id": "i", "sessionId": session_id}
        )
    assert inspection["type"] == "context.inspection"
    assert counted == []  # history estimates came from the database


async def test_exact_inspection_asks_the_token_counting_endpoint(
    chat_client, fake_anthropic
) -> None:
    fake, _ = fake_anthropic
    async with chat_client.ws_connect("/gateway") as ws:
        session_id = (await send_chat(ws, "a", "count me exactly"))[0]["sessionId"]
        inspection = await exchange(
            ws, {"type": "context.inspect", "id": "x", "sessionId": session_id, "exact": True}
        )
    counted = [r for r in fake.requests if r.path == "/v1/messages/count_tokens"]
    assert len(counted) == 1
    assert counted[0].json["system"] == SYSTEM_PROMPT
    assert counted[0].json["messages"][0] == {"role": "user", "content": "count me exactly"}
    expected = (len(SYSTEM_PROMPT) + len("count me exactly") + len("Hello, world!")) // 4 + 1
    assert inspection["exactInputTokens"] == expected


async def test_usage_report_per_model_and_time_range(
    chat_client, fake_anthropic, home: Home
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(
        Scenario(input_tokens=100, output_tokens=10),
        Scenario(input_tokens=200, output_tokens=20),
        Scenario(input_tokens=1000, output_tokens=100, cache_read_input_tokens=50),
    )
    async with chat_client.ws_connect("/gateway") as ws:
        first = await send_chat(ws, "a", "one", model="claude-sonnet-4-6")
        await send_chat(ws, "b", "two", sessionId=first[0]["sessionId"])
        await send_chat(ws, "c", "three", model="claude-haiku-4-5")
        report = await exchange(ws, {"type": "usage.query", "id": "u"})
        one_session = await exchange(
            ws, {"type": "usage.query", "id": "v", "sessionId": first[0]["sessionId"]}
        )
        future = await exchange(
            ws, {"type": "usage.query", "id": "w", "since": "2999-01-01T00:00:00Z"}
        )
        past = await exchange(ws, {"type": "usage.query", "id": "y", "until": "2000-01-01"})

    sonnet = report["perModel"]["claude-sonnet-4-6"]
    assert sonnet["requestCount"] == 2
    assert (sonnet["inputTokens"], sonnet["outputTokens"]) == (300, 30)
    assert sonnet["totalCost"] == pytest.approx((300 * 3 + 30 * 15) / 1e6)
    haiku = report["perModel"]["claude-haiku-4-5"]
    assert haiku["cacheReadInputTokens"] == 50
    assert haiku["totalTokens"] == 1150
    assert report["grandTotal"]["requestCount"] == 3
    rows = query(home, "SELECT sum(cost_nanousd) FROM usage_records")
    assert report["grandTotal"]["totalCost"] == rows[0][0] / 1e9
    assert list(one_session["perModel"]) == ["claude-sonnet-4-6"]
    assert future["perModel"] == {}
    assert past["perModel"] == {}
    assert future["grandTotal"]["requestCount"] == 0
