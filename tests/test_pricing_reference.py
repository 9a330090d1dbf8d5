"""The reference table: every price component worked by hand from Anthropic's published
per-million-token prices, checked to the nano-dollar against PriceBook, then through a real
``serve`` process, the real SDK and the fake upstream: the ledger row, chat.stream.end and
usage.query.

One token at $P per MTok costs P * 1000 nano-dollars. Above 200K input-side tokens (input,
cache writes and cache reads together) a model with a long-context tier prices every token
of the request at the higher rate; the current models are flat across their 1M window.

Prices (USD per MTok: input, output, 5-minute write, 1-hour write, cache read):
  claude-sonnet-5-5 (the default model)   2     10     2.50   4     0.10
  claude-sonnet-4-5, up to 200K            3     15     3.75   6     0.30
  claude-sonnet-4-5, above 200K            6     22.50  7.50  12     0.60
  claude-haiku-4-5                         1      5     1.25   2     0.10
  claude-opus-5-5 (the current Opus)       4     20     5      8     0.20
  claude-opus-4-1                         15     75    18.75  30     1.50
"""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

from agentspace_gateway.pricing import PriceBook, TokenCounts

from chat_helpers import send_chat
from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import Scenario
from processes import BIN, free_port, gateway_env, running, wait_for_health_async
from wsclient import exchange

GATEWAY = str(BIN / "agentspace-gateway")
# No price in the table changes after this date; the gateway prices at the request's time.
AT = datetime(2026, 12, 1, tzinfo=UTC)


@attrs.frozen
class Reference:
    model: str
    input_tokens: int
    output_tokens: int
    write_5m: int
    write_1h: int
    cache_read: int
    # Nano-dollars, worked by hand: input, output, 5-minute write, 1-hour write, cache read.
    nanos: tuple[int, int, int, int, int]

    @property
    def counts(self) -> TokenCounts:
        return TokenCounts(
            self.input_tokens,
            self.output_tokens,
            cache_creation_input_tokens=self.write_5m + self.write_1h,
            cache_read_input_tokens=self.cache_read,
            cache_creation_1h_input_tokens=self.write_1h,
        )

    @property
    def total(self) -> int:
        return sum(self.nanos)


# Below 200K: 100 in, 200 out, 1,000 five-minute and 10,000 one-hour writes, 20,000 reads
# (31,100 input-side tokens). Above: 150,000 in, 1,000 out, 20,000 + 30,000 writes, 5,000
# reads (205,000 input-side tokens).
REFERENCES = {
    "sonnet-5-5-below": Reference(
        "claude-sonnet-5-5", 100, 200, 1_000, 10_000, 20_000,
        # 100*2,000; 200*10,000; 1,000*2,500; 10,000*4,000; 20,000*100
        (200_000, 2_000_000, 2_500_000, 40_000_000, 2_000_000),
    ),
    "sonnet-5-5-above": Reference(
        "claude-sonnet-5-5", 150_000, 1_000, 20_000, 30_000, 5_000,
        # flat: 150,000*2,000; 1,000*10,000; 20,000*2,500; 30,000*4,000; 5,000*100
        (300_000_000, 10_000_000, 50_000_000, 120_000_000, 500_000),
    ),
    "sonnet-4-5-below": Reference(
        "claude-sonnet-4-5", 100, 200, 1_000, 10_000, 20_000,
        # 100*3,000; 200*15,000; 1,000*3,750; 10,000*6,000; 20,000*300
        (300_000, 3_000_000, 3_750_000, 60_000_000, 6_000_000),
    ),
    "sonnet-4-5-above": Reference(
        "claude-sonnet-4-5", 150_000, 1_000, 20_000, 30_000, 5_000,
        # long context: 150,000*6,000; 1,000*22,500; 20,000*7,500; 30,000*12,000; 5,000*600
        (900_000_000, 22_500_000, 150_000_000, 360_000_000, 3_000_000),
    ),
    # The issue's reference: $0.0693 (the gateway billed $0.0468 at the five-minute rate).
    "sonnet-4-5-issue": Reference(
        "claude-sonnet-4-5", 100, 200, 0, 10_000, 20_000,
        # 100*3,000; 200*15,000; 0; 10,000*6,000; 20,000*300 = 69,300,000 = $0.0693
        (300_000, 3_000_000, 0, 60_000_000, 6_000_000),
    ),
    # Exactly 200,000 input-side tokens is not above the threshold ...
    "sonnet-4-5-at-200k": Reference(
        "claude-sonnet-4-5", 100, 10, 0, 199_900, 0,
        # 100*3,000; 10*15,000; 0; 199,900*6,000; 0
        (300_000, 150_000, 0, 1_199_400_000, 0),
    ),
    # ... one more token is, and the one-hour write takes the long-context rate too.
    "sonnet-4-5-past-200k": Reference(
        "claude-sonnet-4-5", 100, 10, 0, 199_901, 0,
        # 100*6,000; 10*22,500; 0; 199,901*12,000; 0
        (600_000, 225_000, 0, 2_398_812_000, 0),
    ),
    "haiku-4-5-below": Reference(
        "claude-haiku-4-5", 100, 200, 1_000, 10_000, 20_000,
        # 100*1,000; 200*5,000; 1,000*1,250; 10,000*2,000; 20,000*100
        (100_000, 1_000_000, 1_250_000, 20_000_000, 2_000_000),
    ),
    "haiku-4-5-above": Reference(
        "claude-haiku-4-5", 150_000, 1_000, 20_000, 30_000, 5_000,
        # flat: 150,000*1,000; 1,000*5,000; 20,000*1,250; 30,000*2,000; 5,000*100
        (150_000_000, 5_000_000, 25_000_000, 60_000_000, 500_000),
    ),
    "opus-5-5-below": Reference(
        "claude-opus-5-5", 100, 200, 1_000, 10_000, 20_000,
        # 100*4,000; 200*20,000; 1,000*5,000; 10,000*8,000; 20,000*200
        (400_000, 4_000_000, 5_000_000, 80_000_000, 4_000_000),
    ),
    "opus-5-5-above": Reference(
        "claude-opus-5-5", 150_000, 1_000, 20_000, 30_000, 5_000,
        # flat: 150,000*4,000; 1,000*20,000; 20,000*5,000; 30,000*8,000; 5,000*200
        (600_000_000, 20_000_000, 100_000_000, 240_000_000, 1_000_000),
    ),
    "opus-4-1-below": Reference(
        "claude-opus-4-1", 100, 200, 1_000, 10_000, 20_000,
        # 100*15,000; 200*75,000; 1,000*18,750; 10,000*30,000; 20,000*1,500
        (1_500_000, 15_000_000, 18_750_000, 300_000_000, 30_000_000),
    ),
    "opus-4-1-above": Reference(
        "claude-opus-4-1", 150_000, 1_000, 20_000, 30_000, 5_000,
        # flat: 150,000*15,000; 1,000*75,000; 20,000*18,750; 30,000*30,000; 5,000*1,500
        (2_250_000_000, 75_000_000, 375_000_000, 900_000_000, 7_500_000),
    ),
    # Only five-minute writes, and a dated snapshot id priced as its model.
    "opus-4-1-dated-5m-only": Reference(
        "claude-opus-4-1-20250805", 10, 1, 3, 0, 0,
        # 10*15,000; 1*75,000; 3*18,750; 0; 0
        (150_000, 75_000, 56_250, 0, 0),
    ),
}  # fmt: skip


def test_the_issue_reference_is_69_thousandths_of_a_dollar() -> None:
    assert REFERENCES["sonnet-4-5-issue"].total == 69_300_000


@pytest.mark.parametrize("name", REFERENCES)
def test_price_book_matches_the_hand_worked_reference(name: str) -> None:
    reference = REFERENCES[name]

    cost = PriceBook().cost(reference.model, reference.counts, at=AT)

    input_nanos, output_nanos, write_5m, write_1h, read = reference.nanos
    assert cost.priced
    assert (cost.input_nanousd, cost.output_nanousd) == (input_nanos, output_nanos)
    assert (cost.cache_write_5m_nanousd, cost.cache_write_1h_nanousd) == (write_5m, write_1h)
    assert cost.cache_write_nanousd == write_5m + write_1h
    assert cost.cache_read_nanousd == read
    assert cost.total_nanousd == reference.total


def scenario(reference: Reference) -> Scenario:
    return Scenario(
        text_chunks=["ok"],
        input_tokens=reference.input_tokens,
        output_tokens=reference.output_tokens,
        cache_creation_input_tokens=reference.write_5m + reference.write_1h,
        cache_creation_1h_input_tokens=reference.write_1h,
        cache_read_input_tokens=reference.cache_read,
    )


def ledger(home: Path) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(home / "agentspace.db") as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM usage_records").fetchall()
    return {row["session_id"]: row for row in rows}


async def test_the_reference_through_a_real_server_ledger_wire_and_usage_query(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    fake, base_url = fake_anthropic
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE, ANTHROPIC_API_KEY=TEST_API_KEY, ANTHROPIC_BASE_URL=base_url)
    url = f"ws://127.0.0.1:{port}/gateway"
    ends: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}

    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        await wait_for_health_async(port, process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            for name, reference in REFERENCES.items():
                fake.enqueue(scenario(reference))
                model = {"model": reference.model}
                ends[name] = (await send_chat(ws, name, "price me", **model))[-1]
            for name, end in ends.items():
                query = {"type": "usage.query", "id": name, "sessionId": end["sessionId"]}
                reports[name] = await exchange(ws, query)
            everything = await exchange(ws, {"type": "usage.query", "id": "all"})
        process.terminate()
        process.wait(timeout=20)

    rows = ledger(home)
    for name, reference in REFERENCES.items():
        end, report = ends[name], reports[name]
        assert end["type"] == "chat.stream.end", (name, end)
        input_nanos, output_nanos, write_5m, write_1h, read = reference.nanos
        input_side = input_nanos + write_5m + write_1h + read
        assert end["cost"]["inputCostNanos"] == input_side, name
        assert end["cost"]["outputCostNanos"] == output_nanos, name
        assert end["cost"]["totalCostNanos"] == reference.total, name
        assert end["cost"]["priced"] is True
        assert end["usage"]["cacheCreation1hInputTokens"] == reference.write_1h, name

        row = rows[end["sessionId"]]
        assert (row["input_cost_nanousd"], row["output_cost_nanousd"]) == (
            input_nanos,
            output_nanos,
        ), name
        assert row["cache_write_cost_nanousd"] == write_5m + write_1h, name
        assert row["cache_write_1h_cost_nanousd"] == write_1h, name
        assert row["cache_read_cost_nanousd"] == read, name
        assert row["cost_nanousd"] == reference.total, name
        assert row["cache_creation_1h_input_tokens"] == reference.write_1h, name

        [model_report] = report["perModel"].values()
        assert model_report["totalCostNanos"] == reference.total, name
        assert model_report["cacheCreation1hInputTokens"] == reference.write_1h, name
        assert report["grandTotal"]["totalCostNanos"] == reference.total, name

    grand_total = sum(reference.total for reference in REFERENCES.values())
    assert everything["grandTotal"]["totalCostNanos"] == grand_total
    per_model = {model: r["totalCostNanos"] for model, r in everything["perModel"].items()}
    expected: dict[str, int] = {}
    for reference in REFERENCES.values():
        expected[reference.model] = expected.get(reference.model, 0) + reference.total
    assert per_model == expected
