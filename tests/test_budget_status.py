"""budget.status over a real WebSocket: standings to the nano-dollar against the ledger and the
open reservations, and budget.alert events to the connections that watch, and no other."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from budgets_helpers import (
    fake_openai_fixture,  # noqa: F401 - the fixture
    gateway_fixture,  # noqa: F401 - the fixture
    set_budget,
)
from test_budgets_alerts import send as send_through_anthropic

from agentspace_gateway import appkeys
from agentspace_gateway.gateway.connection import ConnectionContext
from agentspace_gateway.gateway.keys import CONNECTIONS
from agentspace_gateway.metering.budget_alerts import BudgetAlert
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.protocol.message_base import ServerMessage
from agentspace_gateway.storage import NewUsage, ReplyRecorder, SessionRepository
from agentspace_gateway.storage.budgets import Scope
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.storage.usage import Attribution

from wsclient import exchange, receive, request

Client = TestClient[web.Request, web.Application]

ALERT = BudgetAlert(
    scope_kind="global",
    scope_id="",
    period="day",
    threshold_percent=80,
    limit_nanousd=12_345_678_912,
    spent_nanousd=9_000_000_001,
    reserved_nanousd=876_543_210,
    resets_at="2026-12-07T00:00:00.000Z",
)


async def bill(client: Client, session_id: str, request_id: str, cost: int, **who: Any) -> None:
    attribution = Attribution(**who) if who else None
    await ReplyRecorder(client.app[appkeys.DATABASE]).record(
        None,
        NewUsage(
            session_id=session_id,
            model="m",
            input_tokens=1,
            output_tokens=1,
            cost_nanousd=cost,
            request_id=request_id,
            attribution=attribution,
        ),
    )


def by_scope(result: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(b["scope"], b["scopeId"], b["period"]): b for b in result["budgets"]}


async def test_no_budgets_is_an_empty_list(client: Client) -> None:
    async with client.ws_connect("/gateway") as ws:
        result = await exchange(ws, {"type": "budget.status", "id": "b1"})

    assert result == {
        "type": "budget.status.result",
        "requestId": "b1",
        "budgets": [],
        "watching": False,
    }


async def test_standings_count_the_ledger_and_open_reservations_to_the_nanodollar(
    client: Client,
) -> None:
    app = client.app
    store = app[BUDGETS].store
    session = await SessionRepository(app[appkeys.DATABASE]).create(agent_id="main", model="m")
    laptop = (await ClientKeyRepository(app[appkeys.DATABASE]).issue("laptop")).client
    await store.set("global", "", "day", 12_345_678_912)
    await store.set("session", session.id, "total", 1_000_000_000, clip_max_tokens=True)
    await store.set("client", str(laptop.id), "month", 5_000_000_000)
    await bill(client, session.id, "r1", 300_000_001)
    await bill(client, session.id, "r2", 7, client_key_id=laptop.id, agent_id="sub")
    reserved = await store.reserve(
        Scope(session_id=session.id, client_key_id=laptop.id),
        "r3",
        "m",
        40_000_000,
        datetime.now(UTC),
    )
    assert reserved is not None

    async with client.ws_connect("/gateway") as ws:
        result = await exchange(ws, {"type": "budget.status", "id": "b1"})

    budgets = by_scope(result)
    assert set(budgets) == {
        ("global", "", "day"),
        ("session", session.id, "total"),
        ("client", str(laptop.id), "month"),
    }
    everything = budgets[("global", "", "day")]
    assert (everything["limitNanos"], everything["spentNanos"], everything["reservedNanos"]) == (
        12_345_678_912,
        300_000_008,
        40_000_000,
    )
    assert everything["remainingNanos"] == 12_345_678_912 - 300_000_008 - 40_000_000
    assert everything["resetsAt"].endswith("T00:00:00.000Z")
    assert everything["clipMaxTokens"] is False
    assert "client" not in everything
    mine = budgets[("session", session.id, "total")]
    assert (mine["spentNanos"], mine["reservedNanos"], mine["remainingNanos"]) == (
        300_000_008,
        40_000_000,
        1_000_000_000 - 340_000_008,
    )
    assert "resetsAt" not in mine  # a total budget never resets
    assert mine["clipMaxTokens"] is True
    theirs = budgets[("client", str(laptop.id), "month")]
    assert theirs["client"] == "laptop"
    assert (theirs["spentNanos"], theirs["reservedNanos"]) == (7, 40_000_000)
    assert theirs["resetsAt"][8:] == "01T00:00:00.000Z"  # the first of next month, UTC


async def test_a_settled_reservation_is_no_longer_counted(client: Client) -> None:
    store = client.app[BUDGETS].store
    await store.set("agent", "main", "total", 100)
    await store.reserve(Scope(agent_id="main"), "r1", "m", 60, datetime.now(UTC))

    async with client.ws_connect("/gateway") as ws:
        before = by_scope(await exchange(ws, {"type": "budget.status", "id": "b1"}))
        await store.settle("r1")
        after = by_scope(await exchange(ws, {"type": "budget.status", "id": "b2"}))

    assert before[("agent", "main", "total")]["reservedNanos"] == 60
    assert before[("agent", "main", "total")]["remainingNanos"] == 40
    assert after[("agent", "main", "total")]["reservedNanos"] == 0
    assert after[("agent", "main", "total")]["remainingNanos"] == 100


ALERT_FRAME = {
    "type": "budget.alert",
    "scope": "global",
    "scopeId": "",
    "period": "day",
    "thresholdPercent": 80,
    "limitNanos": 12_345_678_912,
    "spentNanos": 9_000_000_001,
    "reservedNanos": 876_543_210,
    "resetsAt": "2026-12-07T00:00:00.000Z",
}


async def next_is_pong(ws: Any, request_id: str) -> bool:
    """Whether nothing was queued for ``ws`` before a ping sent now is answered."""
    await request(ws, {"type": "ping", "id": request_id})
    frame = await receive(ws)
    return frame == {"type": "pong", "requestId": request_id}


async def test_a_watching_connection_receives_alerts_and_another_does_not(client: Client) -> None:
    alerts = client.app[BUDGETS].alerts
    async with client.ws_connect("/gateway") as watcher, client.ws_connect("/gateway") as other:
        started = await exchange(watcher, {"type": "budget.status", "id": "w1", "watch": True})
        assert started["watching"] is True
        plain = await exchange(other, {"type": "budget.status", "id": "o1"})
        assert plain["watching"] is False
        # Asking again while watching neither fails nor doubles the alerts.
        again = await exchange(watcher, {"type": "budget.status", "id": "w2", "watch": True})
        assert again["watching"] is True

        alerts.publish(ALERT)

        assert await receive(watcher) == ALERT_FRAME
        assert await next_is_pong(watcher, "p1")  # once, not twice
        assert await next_is_pong(other, "p2")


async def test_watch_false_stops_the_alerts(client: Client) -> None:
    alerts = client.app[BUDGETS].alerts
    async with client.ws_connect("/gateway") as ws:
        await exchange(ws, {"type": "budget.status", "id": "w1", "watch": True})
        alerts.publish(ALERT)
        assert await receive(ws) == ALERT_FRAME

        stopped = await exchange(ws, {"type": "budget.status", "id": "w2", "watch": False})
        assert stopped["watching"] is False
        alerts.publish(ALERT)

        assert await next_is_pong(ws, "p1")
        # And it can watch again.
        await exchange(ws, {"type": "budget.status", "id": "w3", "watch": True})
        alerts.publish(ALERT)
        assert await receive(ws) == ALERT_FRAME


async def test_a_closed_watcher_is_unsubscribed_and_never_sent_to(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client.app
    sent: list[tuple[str, str]] = []
    send = ConnectionContext.send

    def spying_send(self: ConnectionContext, message: ServerMessage) -> None:
        sent.append((self.id, message.type))
        send(self, message)

    monkeypatch.setattr(ConnectionContext, "send", spying_send)
    async with client.ws_connect("/gateway") as ws:
        await exchange(ws, {"type": "budget.status", "id": "w1", "watch": True})
        app[BUDGETS].alerts.publish(ALERT)
        assert (await receive(ws))["type"] == "budget.alert"
    # The gateway forgets a connection once its handlers have ended.
    for _ in range(200):
        if not app[CONNECTIONS]:
            break
        await asyncio.sleep(0.01)
    assert not app[CONNECTIONS]
    sent.clear()

    app[BUDGETS].alerts.publish(ALERT)  # raises nothing

    assert sent == []


async def test_watch_must_be_a_boolean(client: Client) -> None:
    async with client.ws_connect("/gateway") as ws:
        refused = await exchange(ws, {"type": "budget.status", "id": "b1", "watch": "yes"})

    assert refused["type"] == "error"
    assert refused["code"] == "INVALID_MESSAGE"
    assert refused["details"][0]["field"] == "watch"


async def test_watch_false_right_behind_watch_true_ends_the_watch(client: Client) -> None:
    """Each message runs as its own task: the stop must find the watch however they race."""
    alerts = client.app[BUDGETS].alerts
    async with client.ws_connect("/gateway") as ws:
        await request(ws, {"type": "budget.status", "id": "w1", "watch": True})
        await request(ws, {"type": "budget.status", "id": "w2", "watch": False})
        replies = {frame["requestId"]: frame for frame in [await receive(ws), await receive(ws)]}
        assert replies["w2"]["watching"] is False

        alerts.publish(ALERT)

        assert await next_is_pong(ws, "p1")


async def test_a_threshold_crossed_by_real_requests_reaches_the_watcher_and_only_it(
    gateway: Any,
    fake_anthropic: Any,
) -> None:
    fake, _ = fake_anthropic
    await set_budget(gateway, 1_000_000)  # $0.001, global, total
    async with gateway.ws_connect("/gateway") as watcher, gateway.ws_connect("/gateway") as other:
        await exchange(watcher, {"type": "budget.status", "id": "w1", "watch": True})

        # Through the Anthropic API door: 330,000 then 660,000 nano-dollars settled.
        await send_through_anthropic(gateway, fake, max_tokens=40, output_tokens=20)
        await send_through_anthropic(gateway, fake, max_tokens=40, output_tokens=20)

        assert await receive(watcher) == {
            "type": "budget.alert",
            "scope": "global",
            "scopeId": "",
            "period": "total",
            "thresholdPercent": 50,
            "limitNanos": 1_000_000,
            "spentNanos": 660_000,
            "reservedNanos": 0,
        }
        assert await next_is_pong(other, "p1")
        status = await exchange(watcher, {"type": "budget.status", "id": "w2"})
        [budget] = status["budgets"]
        assert (budget["spentNanos"], budget["reservedNanos"], budget["remainingNanos"]) == (
            660_000,
            0,
            340_000,
        )


async def test_a_client_key_sees_its_own_and_the_global_budget_and_no_one_elses(
    client: Client,
) -> None:
    app = client.app
    store = app[BUDGETS].store
    keys = ClientKeyRepository(app[appkeys.DATABASE])
    laptop, phone = await keys.issue("laptop"), await keys.issue("phone")
    await store.set("global", "", "day", 10)
    await store.set("client", str(laptop.client.id), "month", 20)
    await store.set("client", str(phone.client.id), "month", 30)
    session = await SessionRepository(app[appkeys.DATABASE]).create(agent_id="main", model="m")
    await store.set("session", session.id, "total", 40)
    phone_alert = attrs.evolve(ALERT, scope_kind="client", scope_id=str(phone.client.id))

    headers = {"x-api-key": laptop.secret}
    async with client.ws_connect("/gateway", headers=headers) as ws:
        seen = await exchange(ws, {"type": "budget.status", "id": "b1", "watch": True})
        # Another client's alert is not for it; the global one is.
        app[BUDGETS].alerts.publish(phone_alert)
        app[BUDGETS].alerts.publish(ALERT)
        assert await receive(ws) == ALERT_FRAME
        assert await next_is_pong(ws, "p1")
    async with client.ws_connect("/gateway") as owner:
        everything = await exchange(owner, {"type": "budget.status", "id": "b2"})

    assert {(b["scope"], b["limitNanos"]) for b in seen["budgets"]} == {
        ("global", 10),
        ("client", 20),
    }
    assert len(everything["budgets"]) == 4
