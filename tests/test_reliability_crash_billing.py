"""A serve SIGKILLed mid-reply leaves the streamed output billed, estimated, in the ledger.

No partial reply is stored on a crash (the reply is written when the stream settles), so the
bill is checked against the text the client received: the open usage row is brought up to
the running estimate at most once a second (``PROGRESS_SECONDS``), and this test kills the
process more than that after the last delta arrived.
"""

import asyncio
import json
from pathlib import Path

import aiohttp

from agentspace_gateway.metering.billed_request import PROGRESS_SECONDS
from agentspace_gateway.tokens import TokenEstimator

from fake_anthropic import Scenario
from reliability_helpers import db_rows, gateway_running, kill

CHUNKS = ["The quick brown fox ", "jumps over the lazy dog, ", "then naps in the sun. "] * 4
# Past the progress interval, with room for a loaded machine to run the write.
SETTLE_MARGIN_SECONDS = PROGRESS_SECONDS + 1.5


async def test_a_sigkill_mid_reply_leaves_the_streamed_output_billed(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    fake.enqueue(Scenario(text_chunks=CHUNKS, stall_after=3, stall_seconds=60, input_tokens=40))
    home = tmp_path / "home"
    database = home / "agentspace.db"
    received = ""
    async with (
        gateway_running(home, tmp_path, base_url, "serve-killed") as gateway,
        aiohttp.ClientSession() as http,
        http.ws_connect(gateway.url) as ws,
    ):
        await ws.send_str(json.dumps({"type": "chat.send", "id": "s", "content": "tell me"}))
        while received != "".join(CHUNKS[:3]):
            frame = await ws.receive_json(timeout=10)
            if frame["type"] == "chat.stream.delta":
                received += frame["delta"]
        await asyncio.sleep(SETTLE_MARGIN_SECONDS)
        await kill(gateway)

    async with gateway_running(home, tmp_path, base_url, "serve-after") as gateway:
        [row] = db_rows(database, "SELECT * FROM usage_records")
        assert row["stop_reason"] == "interrupted"
        assert row["input_tokens"] == 40
        assert row["output_tokens"] >= TokenEstimator().count(received) > 1
        assert row["output_estimated"] == 1
        assert row["output_cost_nanousd"] > 0
        # Nothing of the reply was stored: the bill is what the client received.
        assert db_rows(database, "SELECT * FROM messages WHERE role = 'assistant'") == []
        async with aiohttp.ClientSession() as http, http.ws_connect(gateway.url) as ws:
            await ws.send_str(json.dumps({"type": "usage.query", "id": "u"}))
            report = await ws.receive_json(timeout=10)
    [model] = report["perModel"].values()
    assert (model["estimatedCount"], model["outputTokens"]) == (1, row["output_tokens"])
