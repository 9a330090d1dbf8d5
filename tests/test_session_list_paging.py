"""session.list in pages (``limit``, ``after``, ``nextAfter``), over a real WebSocket, and the
``sessions --limit`` command that pages through it."""

import argparse
import json
import sqlite3
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from agentspace_gateway import appkeys
from agentspace_gateway.cli import build_parser
from agentspace_gateway.cli import sessions as sessions_command
from agentspace_gateway.client.connection import GatewayConnection
from agentspace_gateway.home import Home

from conftest import gateway_token
from wsclient import exchange

SESSION_COUNT = 25


async def seed(client: Any, home: Home, count: int = SESSION_COUNT) -> list[str]:
    """``count`` sessions, idle since 2000 in runs of three sharing one last-active time (so
    the id must break ties), and their ids in the order session.list gives them."""
    sessions = client.server.app[appkeys.SESSIONS]
    ids = [(await sessions.create(agent_id="default", model="m")).id for _ in range(count)]
    active = {session_id: f"2000-01-01T00:00:{n // 3:02d}.000Z" for n, session_id in enumerate(ids)}
    with sqlite3.connect(home.database) as connection:
        connection.executemany(
            "UPDATE sessions SET last_active_at = ? WHERE id = ?",
            [(when, session_id) for session_id, when in active.items()],
        )
    return sorted(ids, key=lambda session_id: (active[session_id], session_id), reverse=True)


async def pages(
    ws: ClientWebSocketResponse, limit: int, after: str | None = None
) -> list[dict[str, Any]]:
    """Every reply from the first page to the last, following nextAfter."""
    replies = []
    while True:
        frame: dict[str, Any] = {"type": "session.list", "id": f"p{len(replies)}", "limit": limit}
        if after is not None:
            frame["after"] = after
        reply = await exchange(ws, frame)
        assert reply["type"] == "session.list", reply
        replies.append(reply)
        after = reply.get("nextAfter")
        if after is None:
            return replies
        assert len(replies) <= 100, "nextAfter never ended"


def ids_of(reply: dict[str, Any]) -> list[str]:
    return [session["sessionId"] for session in reply["sessions"]]


async def test_pages_cover_every_session_once_in_order(client, home: Home) -> None:
    expected = await seed(client, home)
    async with client.ws_connect("/gateway") as ws:
        whole = await exchange(ws, {"type": "session.list", "id": "all"})
        paged = await pages(ws, limit=10)

    assert ids_of(whole) == expected
    assert "nextAfter" not in whole  # no limit: everything, as before paging existed
    assert [len(reply["sessions"]) for reply in paged] == [10, 10, 5]
    assert [reply["requestId"] for reply in paged] == ["p0", "p1", "p2"]
    # nextAfter is the id of the page's last session; the last page has none.
    assert [reply.get("nextAfter") for reply in paged] == [expected[9], expected[19], None]
    assert [session_id for reply in paged for session_id in ids_of(reply)] == expected
    # A page holds the same summaries the whole list does.
    assert [s for reply in paged for s in reply["sessions"]] == whole["sessions"]


@pytest.mark.parametrize(
    ("limit", "sizes"),
    [
        (SESSION_COUNT, [SESSION_COUNT]),  # exactly all: no empty page after it
        (SESSION_COUNT - 1, [SESSION_COUNT - 1, 1]),
        (5, [5, 5, 5, 5, 5]),  # the last page is full and still says it is the last
        (1, [1] * SESSION_COUNT),
        (1000, [SESSION_COUNT]),
    ],
)
async def test_next_after_appears_only_when_more_sessions_follow(
    client, home: Home, limit: int, sizes: list[int]
) -> None:
    expected = await seed(client, home)
    async with client.ws_connect("/gateway") as ws:
        paged = await pages(ws, limit=limit)
    assert [len(reply["sessions"]) for reply in paged] == sizes
    assert [session_id for reply in paged for session_id in ids_of(reply)] == expected
    assert all("nextAfter" in reply for reply in paged[:-1])
    assert "nextAfter" not in paged[-1]


async def test_after_takes_an_id_or_a_key_and_works_without_limit(client, home: Home) -> None:
    expected = await seed(client, home)
    async with client.ws_connect("/gateway") as ws:
        by_id = await exchange(
            ws, {"type": "session.list", "id": "i", "limit": 3, "after": expected[4]}
        )
        key = f"agent:default:{expected[4]}"
        by_key = await exchange(ws, {"type": "session.list", "id": "k", "limit": 3, "after": key})
        rest = await exchange(ws, {"type": "session.list", "id": "r", "after": expected[4]})
        past_the_end = await exchange(
            ws, {"type": "session.list", "id": "e", "limit": 3, "after": expected[-1]}
        )

    assert ids_of(by_id) == ids_of(by_key) == expected[5:8]
    assert by_id["nextAfter"] == by_key["nextAfter"] == expected[7]  # an id, even given a key
    assert ids_of(rest) == expected[5:]
    assert "nextAfter" not in rest
    assert past_the_end == {"type": "session.list", "requestId": "e", "sessions": []}


async def test_an_empty_gateway_gives_one_empty_last_page(client) -> None:
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "session.list", "id": "p", "limit": 10})
    assert reply == {"type": "session.list", "requestId": "p", "sessions": []}


@pytest.mark.parametrize("after", ["nope", "agent:default:nope", "agent:other:" + "x" * 21])
async def test_an_unknown_after_is_session_not_found_not_an_empty_page(
    client, home: Home, after: str
) -> None:
    await seed(client, home, count=3)
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "session.list", "id": "u", "limit": 2, "after": after})
        still_open = await exchange(ws, {"type": "ping", "id": "p"})
    assert reply["type"] == "error"
    assert (reply["code"], reply["requestId"]) == ("SESSION_NOT_FOUND", "u")
    assert reply["details"] == {"sessionId": after}
    assert f"No session {after!r} to list after" in reply["message"]
    assert "nextAfter" in reply["message"]  # says how to page from the start
    assert still_open["type"] == "pong"


@pytest.mark.parametrize(
    ("frame", "field", "problem"),
    [
        ({"limit": 0}, "limit", "must be from 1 to 1000"),
        ({"limit": -1}, "limit", "must be from 1 to 1000"),
        ({"limit": 1001}, "limit", "must be from 1 to 1000"),
        ({"limit": "5"}, "limit", "expected an integer"),
        ({"limit": True}, "limit", "expected an integer"),
        ({"limit": 2.5}, "limit", "expected an integer"),
        ({"after": ""}, "after", ""),
        ({"after": "   "}, "after", ""),
        ({"after": "x" * 129}, "after", "128"),
        ({"after": 5}, "after", "expected a string"),
        ({"limit": 10, "after": ["x"]}, "after", "expected a string"),
    ],
)
async def test_a_bad_limit_or_after_is_refused_against_its_field(
    client, home: Home, frame: dict[str, Any], field: str, problem: str
) -> None:
    await seed(client, home, count=2)
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "session.list", "id": "b", **frame})
    assert (reply["type"], reply["code"], reply["requestId"]) == ("error", "INVALID_MESSAGE", "b")
    [detail] = reply["details"]
    assert detail["field"] == field
    assert problem in detail["message"]


async def test_null_limit_and_after_mean_absent(client, home: Home) -> None:
    expected = await seed(client, home, count=4)
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(
            ws, {"type": "session.list", "id": "n", "limit": None, "after": None}
        )
    assert ids_of(reply) == expected
    assert "nextAfter" not in reply


async def test_a_session_active_while_paging_moves_to_the_front(client, home: Home) -> None:
    """Pages are read one request at a time, not from a snapshot (docs/protocol.md says so):
    a session that becomes active moves to the front, behind a client paging onwards."""
    expected = await seed(client, home)
    async with client.ws_connect("/gateway") as ws:
        first = await exchange(ws, {"type": "session.list", "id": "p", "limit": 10})
        await client.server.app[appkeys.MESSAGES].add(expected[20], "user", "back again")
        rest = await pages(ws, limit=10, after=first["nextAfter"])
        again = await exchange(ws, {"type": "session.list", "id": "a", "limit": 1})
    seen = ids_of(first) + [session_id for reply in rest for session_id in ids_of(reply)]
    assert seen == [session_id for session_id in expected if session_id != expected[20]]
    assert ids_of(again) == [expected[20]]


# The sessions command ------------------------------------------------------------------------


async def listed(
    client: Any, capsys: pytest.CaptureFixture[str], limit: int | None, *, as_json: bool = False
) -> tuple[list[str], str]:
    """What ``sessions [--limit N] [--json]`` prints against the test gateway: the lines of
    stdout, and its note on stderr ("" for none)."""
    args = argparse.Namespace(limit=limit, json=as_json)
    url = str(client.make_url("/gateway"))
    async with await GatewayConnection.open(url, gateway_token(client)) as connection:
        assert await sessions_command.list_sessions(connection, args) == 0
    captured = capsys.readouterr()
    # Left out: log lines, when an earlier test in the run set up logging to stderr.
    notes = [line for line in captured.err.splitlines() if line.startswith("(")]
    return captured.out.splitlines(), "\n".join(notes)


async def test_sessions_limit_shows_the_most_recent_and_says_more_exist(
    client, home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await seed(client, home)
    # Small pages, so the command has to follow nextAfter to reach its limit.
    monkeypatch.setattr(sessions_command, "SESSION_PAGE_MAX", 4)

    table, note = await listed(client, capsys, 10)
    assert table[0].split() == ["session", "model", "created", "messages"]
    assert [line.split()[0] for line in table[1:]] == expected[:10]
    assert note == (
        "(the 10 most recently active sessions; there are more: raise --limit, or leave it "
        "out for all)"
    )

    lines, note = await listed(client, capsys, 10, as_json=True)
    assert [json.loads(line)["sessionId"] for line in lines] == expected[:10]
    assert note.startswith("(the 10 most")

    everything, note = await listed(client, capsys, SESSION_COUNT)
    assert [line.split()[0] for line in everything[1:]] == expected
    assert note == ""  # all of them: nothing more to say

    unlimited, note = await listed(client, capsys, None)
    assert unlimited == everything
    assert note == ""


def test_sessions_limit_must_be_a_positive_whole_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    for bad in ("0", "-3", "ten"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["sessions", f"--limit={bad}"])
        assert exited.value.code == 2
        assert "--limit" in capsys.readouterr().err
    assert parser.parse_args(["sessions", "--limit", "5000"]).limit == 5000
