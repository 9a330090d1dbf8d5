"""Reading a streamed reply and the database after it, for chat tests."""

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from aiohttp import ClientWebSocketResponse

from agentspace_gateway.home import Home

from wsclient import receive, request


async def send_chat(
    ws: ClientWebSocketResponse, request_id: str, content: str, **fields: Any
) -> list[dict[str, Any]]:
    """Send chat.send and collect every frame up to its end (or error)."""
    await request(ws, {"type": "chat.send", "id": request_id, "content": content, **fields})
    return await until_end(ws, request_id)


async def stream_started(
    ws: ClientWebSocketResponse, request_id: str, content: str, at_least: int = 2
) -> list[dict[str, Any]]:
    """Send chat.send and read until a few deltas have arrived."""
    await request(ws, {"type": "chat.send", "id": request_id, "content": content})
    frames: list[dict[str, Any]] = []
    while sum(1 for f in frames if f["type"] == "chat.stream.delta") < at_least:
        frames.append(await receive(ws))
    return frames


async def eventually(rows: Callable[[], list[sqlite3.Row]], timeout: float = 5.0) -> None:
    """Wait until ``rows()`` finds something: the gateway writes after it answers."""
    for _ in range(int(timeout / 0.02)):
        if rows():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing written within {timeout} s")


async def until_end(
    ws: ClientWebSocketResponse, request_id: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await receive(ws, timeout)
        frames.append(frame)
        if frame.get("requestId") == request_id and frame["type"] in ("chat.stream.end", "error"):
            return frames


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["type"] for frame in frames]


def shape(frames: list[dict[str, Any]]) -> list[str]:
    """The kinds, with each run of deltas as one: the gateway may join deltas that queue up
    (docs/protocol.md), so how many frames carry the text is not part of the contract."""
    kept: list[str] = []
    for kind in kinds(frames):
        if not (kind == "chat.stream.delta" and kept and kept[-1] == kind):
            kept.append(kind)
    return kept


def deltas(frames: list[dict[str, Any]]) -> str:
    return "".join(f["delta"] for f in frames if f["type"] == "chat.stream.delta")


def query(home: Home, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(home.database) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, params).fetchall()


def messages(home: Home) -> list[tuple[str, str, int]]:
    rows = query(home, "SELECT role, content, complete FROM messages ORDER BY id")
    return [(row["role"], row["content"], row["complete"]) for row in rows]


def usage_rows(home: Home) -> list[sqlite3.Row]:
    return query(home, "SELECT * FROM usage_records ORDER BY id")


def closed_usage_rows(home: Home) -> list[sqlite3.Row]:
    """Usage rows of requests that have ended: a row is opened when its stream starts."""
    return [row for row in usage_rows(home) if row["stop_reason"] != "in_progress"]
