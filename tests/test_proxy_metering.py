"""The Anthropic door bills through the app's one metering pipeline: its rows carry their
client and agent from the first report, the streamed text reaches the meter for the
cut-off estimate, and the console's handlers read proxied sessions without the door."""

import ast
import asyncio
from pathlib import Path

import pytest

from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.proxy.relay import billing_events
from agentspace_gateway.proxy.sse import SseEvent

from fake_anthropic import Scenario
from proxy_helpers import MODEL, Proxied, proxied_gateway

STREAM = {
    "model": MODEL,
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    return await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)


async def test_a_row_is_attributed_from_its_first_report_while_the_stream_runs(
    proxied: Proxied,
) -> None:
    proxied.fake.enqueue(Scenario(endless=True, delay_between_chunks=0.01, input_tokens=17))
    response = await proxied.client.post(
        "/v1/messages",
        json=STREAM,
        headers={
            "x-api-key": proxied.key.secret,
            "anthropic-version": "2023-06-01",
            "x-claude-code-session-id": "cc-session-1",
            "x-claude-code-agent-id": "sub-2",
            "x-claude-code-parent-agent-id": "main",
        },
    )
    request_id = response.headers["x-agentspace-request-id"]
    await response.content.readuntil(b"content_block_delta")
    # A gateway killed now would leave this row: it must already say whose it is.
    for _ in range(250):
        rows = proxied.rows("SELECT * FROM usage_records WHERE request_id = ?", (request_id,))
        if rows:
            break
        await asyncio.sleep(0.02)
    response.close()
    (row,) = rows
    assert row["stop_reason"] == "in_progress"
    assert row["input_tokens"] == 17
    assert (row["client_key_id"], row["agent_id"], row["parent_agent_id"]) == (
        proxied.key.client.id,
        "sub-2",
        "main",
    )


async def test_text_thinking_and_tool_input_deltas_reach_the_meter(proxied: Proxied) -> None:
    billed = proxied.client.app[CHAT].metering.begin(
        session_id="unused", model=MODEL, request_id="r1", estimated_input_tokens=None
    )
    for delta in (
        {"type": "thinking_delta", "thinking": "hmm "},
        {"type": "signature_delta", "signature": "c2ln"},  # not output text
        {"type": "input_json_delta", "partial_json": '{"q":'},
        {"type": "text_delta", "text": "answer"},
    ):
        billing_events(billed, SseEvent("content_block_delta", {"index": 0, "delta": delta}))
    assert billed.text == 'hmm {"q":answer'


def test_no_handler_imports_a_door() -> None:
    doors = ("agentspace_gateway.proxy", "agentspace_gateway.openai_api")
    reaching: list[str] = []
    handlers = sorted(HANDLERS.glob("*.py"))
    for path in handlers:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            reaching += [f"{path.name}: {name}" for name in names if name.startswith(doors)]
    assert len(handlers) > 5  # the handlers were found: an empty list means something
    assert reaching == []
