"""Clients that misbehave, against a real ``serve`` process: one that leaves mid-stream, one
that stops reading while a fast reply floods towards it."""

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from fake_anthropic import Scenario
from reliability_helpers import (
    Gateway,
    StreamRecord,
    exchange_rows,
    gateway_running,
    stream_chat,
)
from test_gateway_flow_control import drained_until_closed, masked_text_frame, open_lazy_reader

MIB = 1024  # /proc reports KiB
# Big deltas, so the reply passes the outbound byte cap (16 MiB by default) in about a
# second. Small deltas would first fill the kernel's socket buffer (a few MiB) and then be cut
# off by the message bound after 5 s; test_gateway_flow_control covers that bound.
CHUNK = "z" * 256 * 1024
FLOODS = 3


async def test_a_client_leaving_mid_stream_closes_upstream_within_a_second(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    fake.default = Scenario(endless=True, text_chunks=["word "], delay_between_chunks=0.01)
    home = tmp_path / "home"
    record = StreamRecord("s", "keep talking")

    async with gateway_running(home, tmp_path, base_url) as gateway:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(gateway.url)
            await ws.send_str(
                json.dumps({"type": "chat.send", "id": "s", "content": "keep talking"})
            )
            while record.text.count("word") < 3:
                record.frames.append(await ws.receive_json(timeout=5))
            # No close handshake: the TCP connection just goes, as when a laptop lid shuts.
            transport = ws._response.connection.transport  # type: ignore[union-attr]
            transport.abort()
            aborted = time.monotonic()
        await fake.wait_for_disconnect(timeout=5.0)
        closed_after = fake.disconnects[-1].ended_at - aborted  # type: ignore[operator]
        stored = await stored_exchange(gateway, record.content)

    assert closed_after < 1.0
    print(f"\nupstream request closed {closed_after:.3f} s after the client vanished")
    [reply] = stored["replies"]
    assert reply["complete"] == 0
    assert reply["content"].startswith(record.text)
    [usage] = stored["usage"]
    assert usage["stop_reason"] == "cancelled"
    assert usage["input_tokens"] > 0


async def stored_exchange(gateway: Gateway, content: str) -> dict:  # type: ignore[type-arg]
    """The exchange's rows, once the gateway has written them (it writes after the upstream
    request is closed)."""
    database = gateway.home / "agentspace.db"
    for _ in range(1500):
        stored = exchange_rows(database, content)
        if stored["usage"] and stored["usage"][0]["stop_reason"] != "in_progress":
            return stored
        await asyncio.sleep(0.02)
    raise AssertionError(f"no usage row for {content!r}:\n{gateway.output()}")


async def watch_rss(gateway: Gateway, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set() and gateway.process.returncode is None:
        peak.append(gateway.rss_kib()[0])
        await asyncio.sleep(0.01)


async def test_a_client_that_stops_reading_is_cut_off_and_memory_stays_bounded(
    tmp_path: Path, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    home = tmp_path / "home"
    figures = []

    async with gateway_running(home, tmp_path, base_url) as gateway:
        async with aiohttp.ClientSession() as http, http.ws_connect(gateway.url) as ws:
            # Warm up: the SDK client, the price table and tiktoken are loaded on first use.
            assert (await stream_chat(ws, StreamRecord("w", "warm up"))).end is not None
        baseline, _ = gateway.rss_kib()

        fake.default = Scenario(endless=True, text_chunks=[CHUNK])
        for number in range(FLOODS):
            began = time.monotonic()
            content = f"flood {number}"
            reader, writer = await open_lazy_reader(gateway.port)
            samples: list[int] = []
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch_rss(gateway, samples, stop))
            message = {"type": "chat.send", "id": f"f{number}", "content": content}
            writer.write(masked_text_frame(json.dumps(message)))
            await writer.drain()
            await fake.wait_for_disconnect(timeout=30.0)
            cut_off = time.monotonic() - began
            stored = await stored_exchange(gateway, content)
            stop.set()
            await watcher
            received = await drained_until_closed(reader)
            writer.close()
            [upstream] = [r for r in fake.disconnects if content in json.dumps(r.request.json)]
            [reply] = stored["replies"]
            figures.append(
                {
                    "cut_off": cut_off,
                    "stored": len(reply["content"]),
                    "upstream": upstream.chunks_sent * len(CHUNK),
                    "received": received,
                    "peak": max(samples),
                    "after": gateway.rss_kib()[0],
                }
            )
            assert reply["complete"] == 0
            # What the gateway had read when it let go: the fake may have written more.
            assert 0 < len(reply["content"]) <= upstream.chunks_sent * len(CHUNK)
            assert stored["usage"][0]["stop_reason"] == "cancelled"
        output = gateway.output()

    assert "client is not reading" in output
    assert output.count("bytes pending, over the cap") == FLOODS
    for figure in figures:
        # Cut off at the bound: most of what Anthropic sent never went to the client.
        assert figure["received"] < figure["upstream"] / 2, figures
        # Generous: the queue holds at most 16 MiB of text by default.
        assert figure["peak"] - baseline < 256 * MIB, figures
    # Not a leak either: each flood peaks where the second did, give or take. (What is left
    # after each wanders by tens of MiB: freed memory the allocator keeps for reuse. The
    # first flood is the allocator's warm-up: its arenas for 20 MiB replies are new, and
    # the second peaks 35 to 50 MiB above it on every commit measured.)
    assert figures[-1]["peak"] - figures[1]["peak"] < 64 * MIB, figures
    print(f"\nbaseline RSS {baseline // MIB} MiB")
    for f in figures:
        print(
            f"cut off, upstream closed after {f['cut_off']:.1f} s: "
            f"{f['upstream'] / 2**20:.1f} MiB from upstream, {f['received'] // 2**10} KiB to "
            f"the client, {f['stored'] / 2**20:.1f} MiB stored; RSS peak {f['peak'] // MIB} MiB, "
            f"after {f['after'] // MIB} MiB"
        )
