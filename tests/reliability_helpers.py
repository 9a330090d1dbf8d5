"""Driving real ``serve`` processes for the reliability tests.

The fake upstream runs on the test's own event loop, so nothing here may block it: the
process is an asyncio subprocess, and its output goes to a file (a pipe nobody reads would
fill up and stall the gateway's logging).
"""

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from attrs import define, field

from conftest import TEST_API_KEY
from processes import BIN, POLL_SECONDS, WAIT_SECONDS, free_port, gateway_env

GATEWAY = str(BIN / "agentspace-gateway")


@define
class Gateway:
    process: asyncio.subprocess.Process
    home: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM): resident memory now and its peak so far, in KiB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]


async def start_gateway(
    home: Path, workdir: Path, base_url: str, name: str = "serve", **env: str
) -> Gateway:
    """``serve`` on a free port, pointed at the fake upstream; returns once /health answers."""
    port = free_port()
    log = workdir / f"{name}.log"
    environment = gateway_env(
        home, ANTHROPIC_API_KEY=TEST_API_KEY, ANTHROPIC_BASE_URL=base_url, **env
    )
    with log.open("wb") as out:
        # cwd is outside the checkout, so the installed package is imported.
        process = await asyncio.create_subprocess_exec(
            GATEWAY,
            "serve",
            "--port",
            str(port),
            env=environment,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(process, home, port, log)
    try:
        await wait_for_health(gateway)
    except BaseException:
        await kill(gateway)
        raise
    return gateway


async def wait_for_health(gateway: Gateway, timeout: float = WAIT_SECONDS) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
        while True:
            if gateway.process.returncode is not None:
                raise AssertionError(
                    f"serve exited {gateway.process.returncode}:\n{gateway.output()}"
                )
            try:
                async with http.get(f"http://127.0.0.1:{gateway.port}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(POLL_SECONDS)


async def wait_for_exit(gateway: Gateway, timeout: float = WAIT_SECONDS) -> int:
    return await asyncio.wait_for(gateway.process.wait(), timeout)


async def kill(gateway: Gateway) -> None:
    if gateway.process.returncode is None:
        gateway.process.send_signal(signal.SIGKILL)
        await wait_for_exit(gateway)


@contextlib.asynccontextmanager
async def gateway_running(
    home: Path, workdir: Path, base_url: str, name: str = "serve", **env: str
) -> AsyncIterator[Gateway]:
    gateway = await start_gateway(home, workdir, base_url, name, **env)
    try:
        yield gateway
    finally:
        await kill(gateway)


def run_cli(home: Path, workdir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A short CLI command (it does not touch the fake upstream, so blocking is fine)."""
    return subprocess.run(
        [GATEWAY, *argv],
        env=gateway_env(home),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )


def db_rows(database: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, params).fetchall()


def integrity(database: Path) -> list[str]:
    """``PRAGMA integrity_check`` (``['ok']`` when sound) and any foreign key violations."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        checked = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        broken = [repr(row) for row in connection.execute("PRAGMA foreign_key_check")]
    return checked + broken


@define
class StreamRecord:
    """One chat.send as a client saw it."""

    request_id: str
    content: str
    frames: list[dict[str, Any]] = field(factory=list)

    @property
    def started(self) -> bool:
        return any(f["type"] == "chat.stream.start" for f in self.frames)

    @property
    def end(self) -> dict[str, Any] | None:
        return next((f for f in self.frames if f["type"] == "chat.stream.end"), None)

    @property
    def error(self) -> dict[str, Any] | None:
        return next((f for f in self.frames if f["type"] == "error"), None)

    @property
    def text(self) -> str:
        return "".join(f["delta"] for f in self.frames if f["type"] == "chat.stream.delta")

    @property
    def session_id(self) -> str | None:
        return next((f["sessionId"] for f in self.frames if "sessionId" in f), None)


async def stream_chat(
    ws: aiohttp.ClientWebSocketResponse, record: StreamRecord, **fields: Any
) -> StreamRecord:
    """Send the chat.send and keep every frame answering it, until its end or error.

    Returns early (without an end) when the connection goes away.
    """
    message = {"type": "chat.send", "id": record.request_id, "content": record.content, **fields}
    await ws.send_str(json.dumps(message))
    async for frame in ws:
        if frame.type is not aiohttp.WSMsgType.TEXT:
            break
        data = json.loads(frame.data)
        record.frames.append(data)
        if data.get("requestId") == record.request_id and data["type"] in (
            "chat.stream.end",
            "error",
        ):
            break
    return record


def exchange_rows(database: Path, content: str) -> dict[str, Any]:
    """The user message with this content, the reply and usage row sharing its exchange id,
    read in one transaction: the gateway writes the reply and its usage together."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as connection:
        connection.row_factory = sqlite3.Row
        connection.execute("BEGIN")
        [user] = connection.execute(
            "SELECT * FROM messages WHERE role = 'user' AND content = ?", (content,)
        ).fetchall()
        exchange_id = user["request_id"]
        replies = connection.execute(
            "SELECT * FROM messages WHERE role = 'assistant' AND request_id = ?", (exchange_id,)
        ).fetchall()
        usage = connection.execute(
            "SELECT * FROM usage_records WHERE request_id = ?", (exchange_id,)
        ).fetchall()
        connection.execute("COMMIT")
    return {"user": user, "replies": replies, "usage": usage}
