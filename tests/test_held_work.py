"""The doors' deferred work (a key use's audit row, a kept body, a session's mark) waits for
every request still on its way to its first byte, never longer than its bound, and none of it
is lost: not to a failing call, not to a request that never begins, not to shutdown."""

import asyncio
import contextlib
import logging
from typing import Any

import anthropic
import pytest

from agentspace_gateway.client_auth import deferred
from agentspace_gateway.client_auth.deferred import HeldWork
from agentspace_gateway.home import Home

from fake_anthropic import FakeAnthropic, Scenario
from proxy_helpers import MODEL, Proxied, audit_events, kept_files, proxied_gateway

BODY: Any = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
USED = ("client.use", "client laptop; POST /v1/messages")


def test_a_lone_request_runs_its_work_at_its_first_byte() -> None:
    done: list[str] = []
    later = HeldWork().deferred()
    later.add(lambda: done.append("audit"))
    later.add(lambda: done.append("kept"))
    assert done == []
    later.run()
    assert done == ["audit", "kept"]
    later.run()  # the request's end: nothing runs twice
    assert done == ["audit", "kept"]


async def test_work_waits_for_a_request_still_before_its_first_byte() -> None:
    done: list[str] = []
    held = HeldWork(max_hold_seconds=60)
    first, second = held.deferred(), held.deferred()
    first.add(lambda: done.append("first"))
    second.add(lambda: done.append("second"))
    first.run()  # the first reply has begun; the second request is still on its way
    assert done == []
    second.run()
    assert done == ["first", "second"]


async def test_work_added_after_a_first_byte_runs_at_the_requests_end() -> None:
    done: list[str] = []
    held = HeldWork(max_hold_seconds=60)
    first, other = held.deferred(), held.deferred()
    first.run()
    first.add(lambda: done.append("late"))
    first.run()  # the request ends: held as well, its place in the count given up already
    assert done == []
    other.run()
    assert done == ["late"]


async def test_held_work_runs_within_its_bound_though_a_request_never_begins() -> None:
    done: list[str] = []
    held = HeldWork(max_hold_seconds=0.05)
    first, stalled = held.deferred(), held.deferred()
    first.add(lambda: done.append("first"))
    first.run()
    assert done == []
    for _ in range(100):
        await asyncio.sleep(0.01)
        if done:
            break
    assert done == ["first"]
    stalled.run()  # it ends later: its own work runs then, the first's not again
    assert done == ["first"]


async def test_a_failing_call_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    held = HeldWork()
    first, second = held.deferred(), held.deferred()
    first.add(lambda: done.append("before"))
    first.add(lambda: 1 / 0 and None)
    second.add(lambda: done.append("after"))
    first.run()
    with caplog.at_level(logging.ERROR, logger=deferred.__name__):
        second.run()  # runs the first's calls too; the failure is not the second's
    assert done == ["before", "after"]
    assert "deferred work of a proxied request failed" in caplog.text


async def test_run_runs_everything_held_now() -> None:
    done: list[str] = []
    held = HeldWork(max_hold_seconds=60)
    first, _stalled = held.deferred(), held.deferred()
    first.add(lambda: done.append("first"))
    first.run()
    held.run()  # what the app does as it closes
    assert done == ["first"]


def sdk(proxied: Proxied) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=proxied.key.secret, base_url=proxied.base_url, max_retries=0
    )


async def stalled_and_finished(
    proxied: Proxied, client: anthropic.AsyncAnthropic
) -> tuple[asyncio.Task[Any], str]:
    """One request stalled before its reply's headers, then one answered whole."""
    proxied.fake.enqueue(Scenario(delay_before_stream=30.0))
    stalled = asyncio.ensure_future(client.messages.create(**BODY))
    await proxied.fake.wait_for_requests(1)
    proxied.fake.enqueue(Scenario(text_chunks=["Hello."], input_tokens=10, output_tokens=2))
    reply = await client.messages.create(**BODY)
    return stalled, reply.content[0].text  # type: ignore[union-attr]


async def uses_and_kept(proxied: Proxied) -> tuple[int, int]:
    """Key uses audited and request bodies kept so far."""
    return (await audit_events(proxied)).count(USED), len(await kept_files(proxied))


async def test_a_reply_beside_a_stalled_request_has_its_use_audited_within_the_bound(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    async with sdk(proxied) as client:
        stalled, text = await stalled_and_finished(proxied, client)
        assert text == "Hello."
        for _ in range(100):  # the stalled request never begins; the bound lets the work go
            await asyncio.sleep(0.05)
            if await uses_and_kept(proxied) == (1, 1):
                break
        assert await uses_and_kept(proxied) == (1, 1)
        assert not stalled.done()
        stalled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stalled


async def test_work_held_when_the_gateway_closes_is_done_before_it_closes(
    make_client: Any,
    fake_anthropic: tuple[FakeAnthropic, str],
    home: Home,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deferred, "MAX_HOLD_SECONDS", 3600.0)
    proxied = await proxied_gateway(make_client, fake_anthropic, home, monkeypatch)
    async with sdk(proxied) as client:
        stalled, text = await stalled_and_finished(proxied, client)
        assert text == "Hello."
        await asyncio.sleep(0.2)
        assert await uses_and_kept(proxied) == (0, 0)  # held: the stalled one never began
        await proxied.client.close()
        with pytest.raises(anthropic.APIError):
            await stalled
    assert await uses_and_kept(proxied) == (2, 2)
