"""Each proxied request lands in an ordinary session of its client, with its agents."""

import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.proxy.routes import PROXY

from proxy_helpers import (
    INPUT_NANOS,
    MODEL,
    OUTPUT_NANOS,
    Proxied,
    issue,
    proxied_gateway,
    send_message,
)
from wsclient import exchange

BODY = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    return await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)


async def test_claude_codes_session_and_agents_are_recorded(proxied: Proxied) -> None:
    main_agent = {"x-claude-code-session-id": "0b9d5f0e-cc01", "x-claude-code-agent-id": "main"}
    first = await send_message(proxied, proxied.key.secret, **main_agent)
    sub = await send_message(
        proxied,
        proxied.key.secret,
        **{**main_agent, "x-claude-code-agent-id": "sub-1"},
        **{"x-claude-code-parent-agent-id": "main"},
    )
    origins = proxied.client.app[PROXY].origins
    session = await origins.find(proxied.key.client.id, "0b9d5f0e-cc01")
    assert session is not None
    assert (session.agent_id, session.origin_client, session.origin_agent) == (
        "laptop",
        proxied.key.client.id,
        "main",
    )
    rows = [proxied.usage_row(first), proxied.usage_row(sub)]
    assert [row["session_id"] for row in rows] == [session.id, session.id]
    assert [(row["agent_id"], row["parent_agent_id"]) for row in rows] == [
        ("main", None),
        ("sub-1", "main"),
    ]
    # An ordinary session: listed, and reported by usage.
    listed = await proxied.client.app[appkeys.SESSIONS].get(session.id)
    assert listed is not None
    assert listed.session_key == f"agent:laptop:{session.id}"
    totals = await proxied.client.app[appkeys.USAGE_LEDGER].totals_by_model(session_id=session.id)
    assert totals[MODEL].cost_nanousd == 2 * (10 * INPUT_NANOS + 2 * OUTPUT_NANOS)


async def test_agentspace_session_header_then_the_clients_default_session(
    proxied: Proxied,
) -> None:
    named = await send_message(
        proxied, proxied.key.secret, **{"x-agentspace-session-id": "nightly"}
    )
    default_1 = await send_message(proxied, proxied.key.secret)
    default_2 = await send_message(proxied, proxied.key.secret)
    other = await issue(proxied.client, "ci")
    other_default = await send_message(proxied, other.secret)
    same_name_other_client = await send_message(
        proxied, other.secret, **{"x-agentspace-session-id": "nightly"}
    )

    sessions = {
        name: proxied.usage_row(request_id)["session_id"]
        for name, request_id in [
            ("named", named),
            ("default_1", default_1),
            ("default_2", default_2),
            ("other_default", other_default),
            ("other_named", same_name_other_client),
        ]
    }
    assert sessions["default_1"] == sessions["default_2"]
    assert len({*sessions.values()}) == 4
    origins = proxied.client.app[PROXY].origins
    nightly = await origins.find(proxied.key.client.id, "nightly")
    assert nightly is not None
    assert nightly.id == sessions["named"]


async def test_a_malformed_session_header_is_an_invalid_request(proxied: Proxied) -> None:
    response = await proxied.client.post(
        "/v1/messages",
        json=BODY,
        headers={"x-api-key": proxied.key.secret, "x-claude-code-session-id": "a b"},
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "x-claude-code-session-id" in body["error"]["message"]
    assert proxied.fake.requests == []


async def test_session_list_shows_where_a_proxied_session_came_from(proxied: Proxied) -> None:
    await send_message(
        proxied,
        proxied.key.secret,
        **{"x-claude-code-session-id": "cc-42", "x-claude-code-agent-id": "main"},
    )
    await send_message(proxied, proxied.key.secret)
    async with proxied.client.ws_connect("/gateway") as ws:
        listing = await exchange(ws, {"type": "session.list", "id": "l1"})
    origins = [session.get("origin") for session in listing["sessions"]]
    assert {"client": "laptop", "agentId": "main", "externalId": "cc-42"} in origins
    assert {"client": "laptop"} in origins
    assert len(origins) == 2


async def test_usage_query_reports_one_clients_spend(proxied: Proxied) -> None:
    await send_message(proxied, proxied.key.secret)
    await send_message(proxied, proxied.key.secret)
    other = await issue(proxied.client, "ci")
    await send_message(proxied, other.secret)
    per_request = 10 * INPUT_NANOS + 2 * OUTPUT_NANOS  # 30,000 + 30,000
    async with proxied.client.ws_connect("/gateway") as ws:
        laptop = await exchange(ws, {"type": "usage.query", "id": "u1", "client": "laptop"})
        everyone = await exchange(ws, {"type": "usage.query", "id": "u2"})
        nobody = await exchange(ws, {"type": "usage.query", "id": "u3", "client": "nobody"})
    assert laptop["perModel"][MODEL]["requestCount"] == 2
    assert laptop["grandTotal"]["totalCost"] == 2 * per_request / 1e9
    assert everyone["grandTotal"]["requestCount"] == 3
    assert nobody["perModel"] == {}
