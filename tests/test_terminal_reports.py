"""What the terminal prints for the cases a short session against the fake does not reach:
unknown prices, prompt-cache tokens, a reply cut by max_tokens, and where it connects."""

import json
import os
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
    assert (default.url, default.token_expected) == ("ws://127.0.0.1:3271/gateway", False)
    assert find_gateway(home, Config(gateway=GatewayConfig(require_token=True))).token_expected

    # A live runtime.json wins; a gateway bound to every address is reached on loopback and,
    # having been started with --allow-remote, wants its token.
    runtime = {"pid": os.getppid(), "host": "0.0.0.0", "port": 4100, "startedAt": "now"}
    home.runtime_file.write_text(json.dumps(runtime))
    running = find_gateway(home, Config())
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
