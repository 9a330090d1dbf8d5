"""llm/sse_text.ReadSlices: a stream is read for at most READ_SLICE_SECONDS, then the loop
gets a turn (so the writer sends what was read), and the next slice starts after it."""

import asyncio

import pytest

from agentspace_gateway.llm.sse_text import READ_SLICE_SECONDS, ReadSlices


async def test_the_loop_gets_a_turn_once_a_slice_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    now = [100.0]
    # The loop's clock, held still: the slices read it, nothing here waits on a timer.
    monkeypatch.setattr(loop, "time", lambda: now[0])
    slices = ReadSlices()
    now[0] = 100.0 + READ_SLICE_SECONDS / 2
    assert not slices.spent()
    now[0] = 100.0 + READ_SLICE_SECONDS
    assert slices.spent()

    others: list[str] = []
    loop.call_soon(others.append, "the writer")
    await slices.give_turn()
    assert others == ["the writer"]
    assert not slices.spent()  # the next slice starts when the turn ends
    now[0] += READ_SLICE_SECONDS
    assert slices.spent()
