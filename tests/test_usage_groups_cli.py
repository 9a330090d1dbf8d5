"""`agentspace-gateway usage --by client|agent|session` as a person runs it: a real `serve`, a
client key issued by the CLI, requests through the Anthropic door and a terminal chat."""

import json
import re
from pathlib import Path

import aiohttp
from test_terminal_commands import cli, serving

from agentspace_gateway.client.tables import count, money

from conftest import TEST_API_KEY
from fake_anthropic import Scenario

HEADERS = ("requests", "input", "output", "cache", "write", "cache", "read", "tokens", "cost")


async def test_usage_by_client_agent_and_session(tmp_path: Path, fake_anthropic) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = fake_anthropic
    upstream = {"ANTHROPIC_API_KEY": TEST_API_KEY, "ANTHROPIC_BASE_URL": base_url}
    async with serving(tmp_path, **upstream) as (_, port, env):
        added = await cli("clients", "add", "laptop", env=env, cwd=tmp_path)
        key = re.search(r"asg_[A-Za-z0-9_-]+", added.out)
        assert key, added.out
        async with aiohttp.ClientSession() as http:
            for agent in ("main", "main", "sub-1"):
                fake.enqueue(Scenario(input_tokens=10, output_tokens=2))
                async with http.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    json={
                        "model": "claude-sonnet-4-5",
                        "max_tokens": 8,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    headers={
                        "x-api-key": key.group(0),
                        "anthropic-version": "2023-06-01",
                        "x-claude-code-session-id": "cc-cli-1",
                        "x-claude-code-agent-id": agent,
                    },
                ) as response:
                    assert response.status == 200, await response.text()
        chat = await cli("chat", "--message", "hello", env=env, cwd=tmp_path)
        assert chat.status == 0, chat.err
        by_client = await cli("usage", "--by", "client", env=env, cwd=tmp_path)
        by_agent = await cli("usage", "--by", "agent", env=env, cwd=tmp_path)
        by_session = await cli("usage", "--by", "session", "--json", env=env, cwd=tmp_path)
        laptop_only = await cli(
            "usage", "--by", "agent", "--client", "laptop", env=env, cwd=tmp_path
        )
        bad = await cli("usage", "--by", "team", env=env, cwd=tmp_path)

    assert by_client.status == 0, by_client.err
    header, *rows, total = by_client.out.splitlines()
    assert header.split() == ["client", *HEADERS]
    cells = {row.split()[0]: row.split() for row in rows}
    assert set(cells) == {"laptop", "(websocket)"}
    assert cells["laptop"][1] == "3"
    assert cells["laptop"][2:4] == [count(30), count(6)]
    # claude-sonnet-4-5: 3 x (10 x $3/MTok + 2 x $15/MTok) = 180,000 nano-dollars.
    assert cells["laptop"][-1] == money(None, 180_000)
    assert total.split()[:2] == ["total", "4"]

    header, *rows, _ = by_agent.out.splitlines()
    assert header.split()[0] == "agent"
    assert sorted(row.split()[:2] for row in rows) == [
        ["(websocket)/(none)", "1"],
        ["laptop/main", "2"],
        ["laptop/sub-1", "1"],
    ]
    assert laptop_only.out.splitlines()[0] == "usage of client laptop:"
    assert sorted(row.split()[0] for row in laptop_only.out.splitlines()[2:-1]) == [
        "laptop/main",
        "laptop/sub-1",
    ]

    report = json.loads(by_session.out)
    assert report["groupBy"] == "session"
    groups = report["groups"]
    assert sorted(group["requestCount"] for group in groups) == [1, 3]
    grand = report["grandTotal"]["totalCostNanos"]
    assert sum(group["totalCostNanos"] for group in groups) == grand

    assert bad.status == 2
    assert "invalid choice: 'team'" in bad.err
