"""One connection flooding the gateway gets RATE_LIMITED and cannot starve the others.

Per connection: a token bucket (gateway.messages_per_second, gateway.message_burst) and a
cap on requests handled at once (gateway.max_inflight_messages); a frame over either is
answered RATE_LIMITED and never handled. Frames over gateway.max_frame_bytes close with 1009
(test_gateway_access.py, test_fuzz_protocol.py).
"""

import asyncio
import json
import logging
import time
from typing import Any, ClassVar

import pytest
from attrs import frozen

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.gateway.inbound_limits import TokenBucket
from agentspace_gateway.gateway.keys import CONNECTIONS
from agentspace_gateway.plugin_api import ClientMessage, ConnectionContext, handles
from agentspace_gateway.protocol.connection_messages import Pong

from conftest import inline_plugin
from wsclient import exchange, receive


@frozen(kw_only=True)
class Hold(ClientMessage):
    type: ClassVar[str] = "test.hold"


# The running test's gate; handlers wait on it so they stay in flight.
HELD: dict[str, Any] = {}


@handles(Hold, replies=[Pong])
async def hold(context: ConnectionContext, message: Hold) -> None:
    HELD["started"] += 1
    try:
        await HELD["release"].wait()
    except asyncio.CancelledError:
        HELD["cancelled"] += 1
        raise
    context.send(Pong(request_id=message.id))


HOLD_PLUGIN = inline_plugin("test.hold", "test_security_flood:hold")


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.take() == 0.0
    now[0] += 100
    assert [bucket.take() == 0.0 for _ in range(4)] == [True, True, True, False]


async def test_frames_over_the_rate_are_answered_rate_limited(make_client, passphrase) -> None:
    config = Config(gateway=GatewayConfig(messages_per_second=5.0, message_burst=10))
    client = await make_client(config)
    async with client.ws_connect("/gateway") as ws:
        for n in range(40):
            await ws.send_str(json.dumps({"type": "ping", "id": f"p{n}"}))
        replies = [await receive(ws) for _ in range(40)]

        pongs = [r for r in replies if r["type"] == "pong"]
        limited = [r for r in replies if r["type"] == "error"]
        assert 10 <= len(pongs) < 20  # the burst, and what refilled while sending
        assert len(pongs) + len(limited) == 40  # every frame is answered
        for error in limited:
            assert error["code"] == "RATE_LIMITED"
            assert error["retryable"] is True
            assert 1 <= error["retryAfterMs"] <= 1000
            assert error["details"] == {
                "scope": "connection",
                "messagesPerSecond": 5.0,
                "burst": 10,
            }
        # The requestId rule holds: a refused frame is still matched to its request.
        assert {r["requestId"] for r in replies} == {f"p{n}" for n in range(40)}

        await asyncio.sleep(max(e["retryAfterMs"] for e in limited) / 1000)
        assert (await exchange(ws, {"type": "ping", "id": "after"}))["type"] == "pong"


async def test_a_flood_on_one_connection_does_not_starve_another(
    make_client, passphrase, caplog: pytest.LogCaptureFixture
) -> None:
    """Default limits. The flooder reads its replies, so only the rate limit is in play."""
    client = await make_client(Config())
    flood_size = 5000
    latencies: list[float] = []
    async with client.ws_connect("/gateway") as flooder, client.ws_connect("/gateway") as other:

        async def flood() -> None:
            for n in range(flood_size):
                await flooder.send_str(f'{{"type":"ping","id":"f{n}"}}')

        async def drain() -> dict[str, int]:
            seen = {"pong": 0, "error": 0}
            for _ in range(flood_size):
                message = await receive(flooder, timeout=30)
                seen[message["type"]] += 1
            return seen

        async def probe(stop: asyncio.Event) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                started = time.perf_counter()
                reply = await exchange(other, {"type": "ping", "id": f"o{n}"})
                latencies.append(time.perf_counter() - started)
                assert reply == {"type": "pong", "requestId": f"o{n}"}
                await asyncio.sleep(0.005)

        stop = asyncio.Event()
        prober = asyncio.create_task(probe(stop))
        with caplog.at_level(logging.WARNING):
            _, seen = await asyncio.gather(flood(), drain())
        stop.set()
        await prober

    assert seen["pong"] + seen["error"] == flood_size
    assert seen["error"] > 0  # the flood was over the default rate
    assert len(latencies) >= 3
    # Generous: the point is "not starved", not a latency target. Figures go in the report.
    assert max(latencies) < 1.0, latencies
    print(
        f"\nflood of {flood_size} pings: {seen['pong']} answered, {seen['error']} RATE_LIMITED; "
        f"other connection: {len(latencies)} pings, max {max(latencies) * 1000:.1f} ms, "
        f"median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def held_until(count: int) -> None:
    for _ in range(500):
        if HELD["started"] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {HELD['started']} handlers started")


async def test_requests_in_flight_are_capped(make_client, passphrase) -> None:
    HELD.update(started=0, cancelled=0, release=asyncio.Event())
    config = Config(gateway=GatewayConfig(max_inflight_messages=4, message_burst=1000))
    client = await make_client(config, plugins=[HOLD_PLUGIN])
    async with client.ws_connect("/gateway") as ws, client.ws_connect("/gateway") as other:
        for n in range(50):
            await ws.send_str(json.dumps({"type": "test.hold", "id": f"h{n}"}))
        await ws.send_str(json.dumps({"type": "ping", "id": "behind"}))
        refused = [await receive(ws) for _ in range(47)]
        await held_until(4)
        assert HELD["started"] == 4  # not 50: tasks (and memory) do not grow with the flood
        for error in refused:
            assert error["code"] == "RATE_LIMITED"
            assert error["details"] == {"scope": "connection", "inFlight": 4}
            assert error["retryAfterMs"] > 0
        assert {e["requestId"] for e in refused} == {f"h{n}" for n in range(4, 50)} | {"behind"}
        # Another connection is unaffected meanwhile.
        assert (await exchange(other, {"type": "ping", "id": "o"}))["type"] == "pong"

        HELD["release"].set()
        answered = [await receive(ws) for _ in range(4)]
        assert {r["requestId"] for r in answered} == {"h0", "h1", "h2", "h3"}
        assert (await exchange(ws, {"type": "ping", "id": "now"}))["type"] == "pong"


async def test_closing_at_the_cap_still_cancels_the_running_handlers(
    make_client, passphrase
) -> None:
    HELD.update(started=0, cancelled=0, release=asyncio.Event())
    config = Config(gateway=GatewayConfig(max_inflight_messages=4))
    client = await make_client(config, plugins=[HOLD_PLUGIN])
    app = client.server.app
    async with client.ws_connect("/gateway") as ws:
        for n in range(10):
            await ws.send_str(json.dumps({"type": "test.hold", "id": f"h{n}"}))
        await held_until(4)
    for _ in range(500):
        if HELD["cancelled"] == 4 and not app[CONNECTIONS]:
            break
        await asyncio.sleep(0.01)
    assert HELD["cancelled"] == 4
    assert not app[CONNECTIONS]
