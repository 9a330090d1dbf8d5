"""server.loop_monitor: off by default; when on, a blocked event loop shows at /debug/loop."""

import asyncio
import time

from agentspace_gateway.config import Config, ServerConfig

BLOCK_SECONDS = 0.06


async def test_the_monitor_is_off_unless_asked_for(make_client) -> None:
    client = await make_client()

    assert (await client.get("/debug/loop")).status == 404
    assert (await client.post("/debug/loop/reset")).status in (404, 405)


async def test_a_blocked_loop_is_reported_and_reset(make_client) -> None:
    client = await make_client(Config(server=ServerConfig(loop_monitor=True)))
    await asyncio.sleep(0.05)  # a few ticks on time

    time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 - the stall under test: the app shares this loop
    await asyncio.sleep(0.03)  # the late tick runs
    report = await (await client.post("/debug/loop/reset")).json()

    # A stall of S shows as a lateness between S - period and S; the machine only adds.
    assert report["maxLagMs"] >= (BLOCK_SECONDS * 1000) - report["periodMs"]
    assert report["ticksLateMs"]["20"] >= 1
    assert report["ticks"] >= 3
    assert set(report) >= {"gcRuns", "gcMaxPauseMs", "meanLagMs", "seconds"}
    assert report["ticksLateMs"]["50"] >= 1  # the stall itself: 60 ms, so at least 50 late

    after = await (await client.get("/debug/loop")).json()
    # Counted from the reset: the stall before it is gone (a count that was not reset could
    # only stay or grow), and so is the time before it.
    assert after["ticksLateMs"]["50"] < report["ticksLateMs"]["50"]
    assert after["seconds"] < report["seconds"]
