"""usage.query groupBy: usage per client, agent and session, through the real stack, summed
to the nano-dollar against the ledger."""

from typing import Any

import pytest

from chat_helpers import send_chat
from fake_anthropic import Scenario
from proxy_helpers import (
    Proxied,
    issue,
    proxied_gateway,
    send_message,
)
from wsclient import exchange


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    return await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)


async def make_usage(proxied: Proxied) -> str:
    """Three requests of laptop's Claude Code (two agents), one of ci, one WebSocket chat;
    returns the chat's session id."""
    claude_code = {"x-claude-code-session-id": "cc-1", "x-claude-code-agent-id": "main"}
    await send_message(proxied, proxied.key.secret, **claude_code)
    await send_message(proxied, proxied.key.secret, **claude_code)
    await send_message(
        proxied, proxied.key.secret, **{**claude_code, "x-claude-code-agent-id": "sub-1"}
    )
    ci = await issue(proxied.client, "ci")
    await send_message(proxied, ci.secret, **{"x-claude-code-agent-id": "main"})
    proxied.fake.enqueue(Scenario(input_tokens=7, output_tokens=3, text_chunks=["ok"]))
    async with proxied.client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "c1", "hello")
    assert frames[-1]["type"] == "chat.stream.end"
    session_id: str = frames[0]["sessionId"]
    return session_id


def ledger(proxied: Proxied, group: str) -> dict[Any, tuple[int, int]]:
    """(requests, nano-dollars) per group, straight from the ledger."""
    rows = proxied.rows(
        f"""
        SELECT {group}, count(*), sum(cost_nanousd) FROM usage_records
        LEFT JOIN client_keys ON client_keys.id = usage_records.client_key_id
        GROUP BY {group}
        """  # noqa: S608 - the test's own constant columns
    )
    return {(tuple(row[:-2]) if len(row) > 3 else row[0]): (row[-2], row[-1]) for row in rows}


async def query(proxied: Proxied, **fields: Any) -> dict[str, Any]:
    async with proxied.client.ws_connect("/gateway") as ws:
        return await exchange(ws, {"type": "usage.query", "id": "u", **fields})


def sums(report: dict[str, Any], *key: str) -> dict[Any, tuple[int, int]]:
    return {
        (tuple(g[k] for k in key) if len(key) > 1 else g[key[0]]): (
            g["requestCount"],
            g["totalCostNanos"],
        )
        for g in report["groups"]
    }


def assert_adds_up(report: dict[str, Any]) -> None:
    grand = report["grandTotal"]
    assert sum(g["totalCostNanos"] for g in report["groups"]) == grand["totalCostNanos"]
    assert sum(g["requestCount"] for g in report["groups"]) == grand["requestCount"]
    assert sum(g["totalTokens"] for g in report["groups"]) == grand["totalTokens"]
    assert all(g["totalCost"] == g["totalCostNanos"] / 1e9 for g in report["groups"])


async def test_grouped_by_client_agent_and_session_add_up_to_the_ledger(
    proxied: Proxied,
) -> None:
    chat_session = await make_usage(proxied)
    (total,) = proxied.rows("SELECT sum(cost_nanousd), count(*) FROM usage_records")
    assert total[1] == 5

    by_client = await query(proxied, groupBy="client")
    assert by_client["groupBy"] == "client"
    assert_adds_up(by_client)
    assert by_client["grandTotal"]["totalCostNanos"] == total[0]
    assert sums(by_client, "key") == ledger(proxied, "client_keys.name")
    assert {g["key"]: g["requestCount"] for g in by_client["groups"]} == {
        "laptop": 3,
        "ci": 1,
        None: 1,
    }

    by_agent = await query(proxied, groupBy="agent")
    assert_adds_up(by_agent)
    assert sums(by_agent, "client", "key") == ledger(
        proxied, "client_keys.name, usage_records.agent_id"
    )
    # ci's agent "main" is not laptop's: an agent id is the caller's own.
    assert {(g["client"], g["key"]): g["requestCount"] for g in by_agent["groups"]} == {
        ("laptop", "main"): 2,
        ("laptop", "sub-1"): 1,
        ("ci", "main"): 1,
        (None, None): 1,
    }

    by_session = await query(proxied, groupBy="session")
    assert_adds_up(by_session)
    assert sums(by_session, "key") == ledger(proxied, "usage_records.session_id")
    labels = {g["key"]: (g["client"], g["label"]) for g in by_session["groups"]}
    assert len(labels) == 3
    assert labels[chat_session][0] is None
    laptop_session = next(key for key, (client, _) in labels.items() if client == "laptop")
    assert labels[laptop_session][1] == f"agent:laptop:{laptop_session}"
    # Most expensive first.
    costs = [g["totalCostNanos"] for g in by_session["groups"]]
    assert costs == sorted(costs, reverse=True)


async def test_grouping_leaves_per_model_alone_and_obeys_the_filters(proxied: Proxied) -> None:
    chat_session = await make_usage(proxied)
    plain = await query(proxied)
    assert "groups" not in plain
    assert "groupBy" not in plain
    by_model = await query(proxied, groupBy="model")
    assert by_model == plain | {"requestId": "u"}
    grouped = await query(proxied, groupBy="agent")
    assert grouped["perModel"] == plain["perModel"]

    laptop = await query(proxied, groupBy="agent", client="laptop")
    assert_adds_up(laptop)
    assert {g["key"] for g in laptop["groups"]} == {"main", "sub-1"}
    one = await query(proxied, groupBy="client", sessionId=chat_session)
    assert_adds_up(one)
    assert [(g["key"], g["requestCount"]) for g in one["groups"]] == [(None, 1)]
    empty = await query(proxied, groupBy="session", since="2999-01-01")
    assert empty["groups"] == []
    assert empty["grandTotal"]["totalCostNanos"] == 0


async def test_an_unknown_grouping_is_refused(proxied: Proxied) -> None:
    refused = await query(proxied, groupBy="team")
    assert refused["type"] == "error"
    assert refused["code"] == "INVALID_MESSAGE"
    assert "groupBy" in refused["message"]
