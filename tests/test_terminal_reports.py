"""What the terminal prints for the cases a short session against the fake does not reach:
unknown prices, prompt-cache tokens, a reply cut by max_tokens, and where it connects."""

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from agentspace_gateway.client.errors import ClientError
from agentspace_gateway.client.local import find_gateway, websocket_url
from agentspace_gateway.client.reports import (
    inspection_report,
    reply_summary,
    sessions_report,
    usage_report,
)
from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.home import Home

END = {
    "usage": {
        "inputTokens": 200,
        "outputTokens": 300,
        "cacheCreationInputTokens": 10,
        "cacheReadInputTokens": 1000,
        "totalTokens": 1510,
    },
    "cost": {"inputCost": 0.0009, "outputCost": 0.0045, "totalCost": 0.0054, "priced": True},
    "stopReason": "max_tokens",
}


def test_reply_summary_names_cache_tokens_and_an_unusual_stop() -> None:
    assert reply_summary(END, "claude-sonnet-4-5") == (
        "[1,510 tokens: 200 in, 300 out, 1,000 cache read, 10 cache write | $0.005400 "
        "| claude-sonnet-4-5 | stopped: max_tokens]"
    )


def test_an_estimated_output_says_so() -> None:
    end = {**END, "usage": {**END["usage"], "estimated": True}, "stopReason": "cancelled"}
    assert "300 out (estimated)" in reply_summary(end, "claude-sonnet-4-5")
    assert "(estimated)" not in reply_summary(END, "claude-sonnet-4-5")


def test_an_unknown_price_is_not_shown_as_free() -> None:
    end = {**END, "cost": {**END["cost"], "totalCost": 0.0, "priced": False}, "stopReason": "x"}
    summary = reply_summary(end, "my-model")
    assert '| cost unknown: add [pricing."my-model"] to config.toml |' in summary
    assert "$" not in summary

    report = usage_report(
        {
            "perModel": {
                "claude-sonnet-4-5": {**END["usage"], "totalCost": 0.0084, "requestCount": 2},
                "my-model": {
                    "totalTokens": 30,
                    "totalCost": 0.0,
                    "requestCount": 1,
                    "priced": False,
                },
            },
            "grandTotal": {"totalCost": 0.0084, "totalTokens": 1540, "requestCount": 3},
        }
    )
    assert [line.split() for line in report[1:4]] == [
        ["claude-sonnet-4-5", "2", "200", "300", "10", "1,000", "1,510", "$0.008400"],
        ["my-model", "1", "0", "0", "0", "0", "30", "$0.000000", "*"],
        ["total", "3", "1,540", "$0.008400", "*"],
    ]
    assert report[4] == (
        '* no known price for some requests, counted as $0: add [pricing."my-model"] to config.toml'
    )


def test_an_inspection_before_any_request_and_with_the_exact_count() -> None:
    lines = inspection_report(
        {
            "sessionId": "s1",
            "model": "claude-sonnet-5-5",
            "sections": [{"name": "user_notes", "byteCount": 2048, "tokenEstimate": 512}],
            "totals": {"byteCount": 2048, "tokenEstimate": 512, "costEstimate": 0.0015},
            "exactInputTokens": 600,
        }
    )
    assert lines[2].split() == ["user_notes", "2,048", "512", "$0.000000"]
    assert lines[3].split() == ["total", "2,048", "512", "$0.001500"]
    assert lines[4] == "estimate ratio: none yet (no request of this session is recorded)"
    assert lines[5] == "exact input tokens (Anthropic's count): 600"
    low = inspection_report({"sections": [], "totals": {}, "estimateRatio": 0.8})
    assert low[-1] == "estimate ratio 0.80: the estimates run 20% high against Anthropic's counts"


def test_sessions_mark_the_current_one_by_id_or_key() -> None:
    frame = {
        "sessions": [
            {"sessionId": "a", "sessionKey": "agent:default:a", "model": "m", "messageCount": 2},
            {"sessionId": "b", "sessionKey": "agent:default:b", "model": "m", "messageCount": 0},
        ]
    }
    marked = sessions_report(frame, "agent:default:b")
    assert [line.split()[0] for line in marked[1:]] == ["a", "*"]
    assert sessions_report({"sessions": []}) == ["no sessions yet"]


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("ws://127.0.0.1:3271/gateway", "ws://127.0.0.1:3271/gateway"),
        ("http://localhost:4000", "ws://localhost:4000/gateway"),
        ("https://gateway.example/", "wss://gateway.example/gateway"),
        ("ws://[::1]:3271", "ws://[::1]:3271/gateway"),
    ],
)
def test_url_forms(given: str, url: str) -> None:
    assert websocket_url(given) == url


@pytest.mark.parametrize("given", ["127.0.0.1:3271", "ftp://host", "ws://", ""])
def test_urls_refused(given: str) -> None:
    with pytest.raises(ClientError) as refused:
        websocket_url(given)
    assert refused.value.status == 2


def test_where_the_client_connects(tmp_path: Path) -> None:
    home = Home(tmp_path)
    default = find_gateway(home, Config())
    # #19: a credential is expected by default, loopback included.
    assert (default.url, default.token_expected) == ("ws://127.0.0.1:3271/gateway", True)
    opened = Config(gateway=GatewayConfig(require_token=False))
    assert not find_gateway(home, opened).token_expected

    # A live runtime.json wins; a gateway bound to every address is reached on loopback and,
    # having been started with --allow-remote, wants its token.
    runtime = {"pid": os.getppid(), "host": "0.0.0.0", "port": 4100, "startedAt": "now"}
    home.runtime_file.write_text(json.dumps(runtime))
    running = find_gateway(home, opened)
    assert (running.url, running.pid, running.token_expected) == (
        "ws://127.0.0.1:4100/gateway",
        os.getppid(),
        True,
    )
    home.runtime_file.write_text(json.dumps({**runtime, "host": "::1"}))
    assert find_gateway(home, Config()).url == "ws://[::1]:4100/gateway"
    assert (
        find_gateway(home, Config(), "ws://elsewhere:1/gateway").url == "ws://elsewhere:1/gateway"
    )


def test_costs_are_printed_from_the_exact_integers_so_rows_add_up_to_the_total() -> None:
    # Floats that no longer add up exactly; the integers beside them do.
    rows = {
        "claude-sonnet-4-5": {"totalCost": 13.947539326, "totalCostNanos": 13_947_539_326},
        "claude-haiku-4-5": {"totalCost": 0.1000000001, "totalCostNanos": 100_000_000},
        "claude-opus-4-1": {"totalCost": 0.0000003, "totalCostNanos": 300},
    }
    total = sum(row["totalCostNanos"] for row in rows.values())
    report = usage_report(
        {
            "perModel": {model: {**row, "requestCount": 1} for model, row in rows.items()},
            "grandTotal": {"totalCost": 14.0475396, "totalCostNanos": total, "requestCount": 3},
        }
    )

    costs = [line.split()[-1] for line in report[1:5]]
    assert costs == ["$13.947539326", "$0.100000", "$0.0000003", "$14.047539626"]
    assert sum(Decimal(cost[1:]) for cost in costs[:3]) == Decimal(costs[3][1:])


def test_grouped_usage_names_each_group_and_still_flags_an_unpriced_model() -> None:
    group = {"requestCount": 1, "totalTokens": 5, "priced": True}
    report = usage_report(
        {
            "perModel": {"my-model": {"priced": False}, "claude-sonnet-4-5": {}},
            "grandTotal": {"totalCostNanos": 3_000, "requestCount": 3},
            "groupBy": "agent",
            "groups": [
                {**group, "key": "main", "client": "laptop", "totalCostNanos": 2_000},
                {**group, "key": None, "client": "laptop", "totalCostNanos": 1_000},
                {**group, "key": None, "client": None, "totalCostNanos": 0, "priced": False},
            ],
        }
    )

    assert report[0].split()[:2] == ["agent", "requests"]
    assert [line.split()[0] for line in report[1:5]] == [
        "laptop/main",
        "laptop/(none)",
        "(websocket)/(none)",
        "total",
    ]
    assert [line.split()[-1] for line in report[1:3]] == ["$0.000002", "$0.000001"]
    assert report[3].endswith("$0.000000 *")
    assert report[4].endswith("$0.000003 *")
    assert '[pricing."my-model"]' in report[5]


def test_a_reply_names_its_one_hour_writes_and_an_unknown_model_price() -> None:
    end = {
        "usage": {**END["usage"], "cacheCreation1hInputTokens": 4},
        "cost": {"totalCost": 0.0693, "totalCostNanos": 69_300_000, "priceSource": "unknown_model"},
        "stopReason": "end_turn",
    }

    summary = reply_summary(end, "claude-opus-4-60")

    assert "10 cache write (4 for 1 h)" in summary
    assert "| $0.069300 at the [pricing.unknown_model] price |" in summary


def test_an_inspection_shows_the_spread_and_the_calibrated_estimate() -> None:
    lines = inspection_report(
        {
            "sections": [],
            "totals": {},
            "estimateRatio": 1.25,
            "estimateSpread": {
                "requestCount": 4,
                "minRatio": 0.9,
                "p10Ratio": 0.9,
                "medianRatio": 1.2,
                "p90Ratio": 1.6,
                "maxRatio": 1.6,
            },
            "calibrated": {
                "basis": "session",
                "ratio": 1.25,
                "requestCount": 4,
                "tokenEstimate": 1250,
                "costEstimate": 0.0025,
                "costEstimateNanos": 2_500_000,
            },
        }
    )

    assert lines[-2] == "per request (4): x0.90 to x1.60, median x1.20, 80% within x0.90 to x1.60"
    assert lines[-1] == (
        "calibrated estimate (this session's ratio x1.25 over 4 requests): 1,250 input tokens, "
        "$0.002500 (an estimate, not a count)"
    )
