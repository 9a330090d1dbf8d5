"""chat.send's agentId: a WebSocket chat names the caller's agent, its usage row carries it,
and the agent's budgets apply, whether the connection presented the gateway's own
credential (here the console's session) or a client key."""

import asyncio
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from budgets_helpers import (
    App,
    fake_openai_fixture,  # noqa: F401 - the fixture
    gateway_fixture,  # noqa: F401 - the fixture
    open_reservations,
    rows,
    set_budget,
    standings,
    usage_count,
)

from agentspace_gateway.cli import main
from agentspace_gateway.home import Home

from chat_helpers import send_chat
from conftest import TEST_API_KEY
from fake_anthropic import FakeAnthropic
from proxy_helpers import MODEL, issue
from wsclient import exchange

DOLLAR = 10**9


async def connect(gateway: App, credential: str) -> ClientWebSocketResponse:
    if credential == "client key":
        key = await issue(gateway, "laptop")
        return await gateway.ws_connect("/gateway", headers={"x-api-key": key.secret})
    return await gateway.ws_connect("/gateway")


@pytest.fixture(autouse=True)
def provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)


@pytest.mark.parametrize("credential", ["gateway", "client key"])
async def test_an_agent_budget_refuses_a_chat_naming_that_agent_and_nothing_goes_upstream(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home, credential: str
) -> None:
    await set_budget(gateway, 1_000, scope_kind="agent", scope_id="planner", period="day")
    ws = await connect(gateway, credential)
    async with ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL, agentId="planner")
    error = frames[-1]
    assert error["type"] == "error"
    assert error["code"] == "BUDGET_EXCEEDED"
    details = error["details"]
    assert (details["scopeKind"], details["scopeId"], details["limitNanos"]) == (
        "agent",
        "planner",
        1_000,
    )
    assert details["neededNanos"] > 1_000
    assert fake_anthropic[0].message_requests == []
    assert usage_count(home) == 0
    assert open_reservations(home) == 0


async def test_another_agent_and_a_chat_naming_none_are_not_held_by_that_budget(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    await set_budget(gateway, 1_000, scope_kind="agent", scope_id="planner", period="day")
    async with gateway.ws_connect("/gateway") as ws:
        other = await send_chat(ws, "t1", "hello", model=MODEL, agentId="writer")
        none = await send_chat(ws, "t2", "hello again", model=MODEL)
    assert [other[-1]["type"], none[-1]["type"]] == ["chat.stream.end", "chat.stream.end"]
    assert len(fake_anthropic[0].message_requests) == 2
    agents = [r["agent_id"] for r in rows(home, "SELECT agent_id FROM usage_records ORDER BY id")]
    assert agents == ["writer", None]


@pytest.mark.parametrize("credential", ["gateway", "client key"])
async def test_the_usage_row_carries_the_agent_and_its_budget_counts_it(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home, credential: str
) -> None:
    await set_budget(gateway, DOLLAR, scope_kind="agent", scope_id="planner", period="month")
    ws = await connect(gateway, credential)
    async with ws:
        frames = await send_chat(ws, "t1", "hello", model=MODEL, agentId="planner")
        assert frames[-1]["type"] == "chat.stream.end"
        report = await exchange(ws, {"type": "usage.query", "id": "u", "groupBy": "agent"})

    [row] = rows(home, "SELECT agent_id, client_key_id, cost_nanousd FROM usage_records")
    keys = rows(home, "SELECT id FROM client_keys WHERE name = 'laptop'")
    expected_client = keys[0]["id"] if credential == "client key" else None
    assert (row["agent_id"], row["client_key_id"]) == ("planner", expected_client)
    assert row["cost_nanousd"] > 0
    # The reservation was made against the agent's budget and released to the row's cost.
    [standing] = await standings(gateway)
    assert (standing.spent_nanousd, standing.reserved_nanousd) == (row["cost_nanousd"], 0)
    assert open_reservations(home) == 0
    # usage.query (and the console's "by agent" table) shows the agent.
    [group] = report["groups"]
    assert (group["key"], group["totalCostNanos"]) == ("planner", row["cost_nanousd"])
    assert group["client"] == ("laptop" if credential == "client key" else None)


@pytest.mark.parametrize("bad", ["", "   ", "two words", "a" * 129, "planner\n", 7])
async def test_a_malformed_agent_id_is_refused_and_nothing_is_stored_or_sent(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home, bad: Any
) -> None:
    async with gateway.ws_connect("/gateway") as ws:
        reply = await exchange(
            ws, {"type": "chat.send", "id": "t1", "content": "hi", "agentId": bad}
        )
    assert reply["type"] == "error"
    assert reply["code"] == "INVALID_MESSAGE"
    assert "agentId" in reply["message"]
    assert fake_anthropic[0].message_requests == []
    assert rows(home, "SELECT count(*) AS n FROM messages")[0]["n"] == 0


async def test_a_budget_the_command_sets_or_removes_holds_from_the_next_chat(
    gateway: App, fake_anthropic: tuple[FakeAnthropic, str], home: Home
) -> None:
    """The gateway keeps the budget list in memory: the command (another connection, as from
    another process) must still reach the very next request, both ways."""
    async with gateway.ws_connect("/gateway") as ws:
        before = await send_chat(ws, "t1", "hello", model=MODEL, agentId="planner")
        argv = ["budgets", "set", "agent:planner", "0.000001", "--period", "day"]
        assert await asyncio.to_thread(main, argv) == 0
        refused = await send_chat(ws, "t2", "again", model=MODEL, agentId="planner")
        argv = ["budgets", "remove", "agent:planner", "--period", "day"]
        assert await asyncio.to_thread(main, argv) == 0
        after = await send_chat(ws, "t3", "once more", model=MODEL, agentId="planner")
    assert before[-1]["type"] == "chat.stream.end"
    assert (refused[-1]["type"], refused[-1]["code"]) == ("error", "BUDGET_EXCEEDED")
    assert after[-1]["type"] == "chat.stream.end"
    assert len(fake_anthropic[0].message_requests) == 2
