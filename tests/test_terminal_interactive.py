"""`agentspace-gateway chat` driven through a pseudo terminal, as a person types into it.

The client runs with the pty as its controlling terminal, so Ctrl-C typed into it reaches it
as SIGINT from the terminal, exactly as at a keyboard.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentspace_gateway.cli.context import open_database
from agentspace_gateway.client.chat_loop import SESSIONS_SHOWN
from agentspace_gateway.client.tables import count, money
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.storage import SessionRepository

from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import Scenario
from processes import BIN, free_port, gateway_env, health, running, wait_for

GATEWAY = str(BIN / "agentspace-gateway")
CTRL_C, CTRL_D = "\x03", "\x04"
SESSION_ID = r"[\w-]{21}"
# Become the session leader's controlling terminal, then become the client.
TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A pty with the client on its far side: type into it, wait for what it prints."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", TAKE_TERMINAL, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.output = ""
        self.read_to = 0
        self.closed = False
        self.news = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO once the client has exited
            data = b""
        if data:
            # The terminal turns every newline into CR LF.
            self.output += data.decode(errors="replace").replace("\r\n", "\n")
        else:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.news.set()

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def expect(self, pattern: str, timeout: float = 30.0) -> str:
        """Wait for ``pattern`` (a regex) after what was already matched; return the text up
        to and including the match."""
        async with asyncio.timeout(timeout):
            while True:
                found = re.compile(pattern).search(self.output, self.read_to)
                if found:
                    seen = self.output[self.read_to : found.end()]
                    self.read_to = found.end()
                    return seen
                if self.closed:
                    break
                self.news.clear()
                await self.news.wait()
        raise AssertionError(f"{pattern!r} never came; the terminal shows:\n{self.output}")

    async def exit_status(self) -> int:
        return await asyncio.to_thread(self.process.wait, 30)

    def close(self) -> None:
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
async def gateway(
    tmp_path: Path, fake_anthropic
) -> AsyncIterator[tuple[int, dict[str, str], subprocess.Popen[str]]]:
    _, base_url = fake_anthropic
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE, ANTHROPIC_API_KEY=TEST_API_KEY, ANTHROPIC_BASE_URL=base_url)
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        wait_for(lambda: health(port), timeout=60, process=process)
        yield port, gateway_env(home, PASSPHRASE), process


async def inspect_directly(port: int, session_id: str) -> Any:
    return await ask_directly(port, {"type": "context.inspect", "id": "i", "sessionId": session_id})


async def ask_directly(port: int, message: dict[str, Any]) -> Any:
    url = f"ws://127.0.0.1:{port}/gateway"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json(message)
        return json.loads((await ws.receive(timeout=5)).data)


def listed(text: str) -> list[str]:
    """The session ids in a /sessions table, in order, with a * before the current one."""
    return [
        f"{star}{session}"
        for star, session in re.findall(rf"^(\*?)\s*({SESSION_ID})\s", text, re.MULTILINE)
    ]


async def test_chat_stream_cancel_inspect_usage_sessions_new(
    tmp_path: Path, gateway, fake_anthropic
) -> None:
    port, env, server = gateway
    fake, _ = fake_anthropic
    terminal = Terminal([GATEWAY, "chat"], env, tmp_path)
    try:
        await terminal.expect(r"Connected to ws://127\.0\.0\.1:\d+/gateway: a new session\.")
        await terminal.expect("> ")

        terminal.type("hello\n")
        first = await terminal.expect(r"\n> ")
        [session_id] = re.findall(rf"\(new session ({SESSION_ID})\)", first)
        assert "\nHello, world!\n" in first
        assert re.search(
            r"\[\d+ tokens: \d+ in, 4 out \| \$0\.\d{6,9} \| claude-sonnet-5-5\]", first
        )

        # A reply that would never end: Ctrl-C stops it, and the client stays.
        fake.enqueue(Scenario(text_chunks=["tick "], endless=True, delay_between_chunks=0.02))
        terminal.type("count for ever\n")
        await terminal.expect("tick tick tick ")
        terminal.type(CTRL_C)
        stopped = await terminal.expect(r"\n> ")
        assert re.search(
            r"\[\d+ tokens: \d+ in, \d+ out \(estimated\) \| \$0\.\d{6,9} \| \S+ \| cancelled\]",
            stopped,
        )
        await fake.wait_for_disconnect(timeout=15)
        assert fake.replies[1].outcome == "disconnected"

        terminal.type("/inspect\n")
        shown = await terminal.expect(r"\n> ")
        inspection = await inspect_directly(port, session_id)
        assert f"context of session {session_id} for claude-sonnet-5-5" in shown
        table = shown.splitlines()[2:]
        table = table[: next(i for i, line in enumerate(table) if line.startswith("total")) + 1]
        rows = {line.split()[0]: line.split()[1:] for line in table}
        assert list(rows) == [
            "section",
            "system_prompt",
            "history",
            "memory",
            "skills",
            "tools",
            "total",
        ]
        sections = {s["name"]: s for s in inspection["sections"]}
        sections["total"] = inspection["totals"]
        for name, section in sections.items():
            assert rows[name] == [
                count(section["byteCount"]),
                count(section["tokenEstimate"]),
                money(section["costEstimate"], section["costEstimateNanos"]),
            ]
        assert int(rows["history"][0]) > 0  # the two exchanges, the cancelled reply included
        ratio = inspection["estimateRatio"]
        assert isinstance(ratio, float)
        assert f"estimate ratio {ratio:.2f}: the estimates run " in shown

        terminal.type("/usage\n")
        usage = await terminal.expect(r"\n> ")
        assert "usage of every session:" in usage
        model_row = next(line.split() for line in usage.splitlines() if "claude" in line)
        assert model_row[1] == "2"  # requests: the reply and the cancelled one
        total_row = next(line.split() for line in usage.splitlines() if line.startswith("total"))
        assert total_row[:2] == ["total", "2"]
        assert total_row[-1] == model_row[-1]

        terminal.type("/sessions\n")
        listing = await terminal.expect(r"\n> ")
        assert re.search(rf"\*\s+{session_id}\s+claude-sonnet-5-5\s+\S+\s+4\n", listing)

        terminal.type("/new\n")
        await terminal.expect(r"The next message starts a new session\.\n> ")
        terminal.type("a new topic\n")
        second = await terminal.expect(r"\n> ")
        [other_id] = re.findall(rf"\(new session ({SESSION_ID})\)", second)
        assert other_id != session_id
        terminal.type("/sessions\n")
        listing = await terminal.expect(r"\n> ")
        assert re.search(rf"\*\s+{other_id}\s", listing)
        assert re.search(rf"\n\s+{session_id}\s", listing)

        terminal.type("/help\n")
        assert "/inspect" in await terminal.expect(r"\n> ")
        terminal.type("/nonsense\n")
        assert "Unknown command /nonsense" in await terminal.expect(r"\n> ")

        terminal.type(CTRL_C)  # at the prompt: leave
        assert await terminal.exit_status() == 0
    finally:
        terminal.close()
    assert "Traceback" not in terminal.output

    # Back to the first session; Ctrl-D at the prompt leaves too.
    terminal = Terminal([GATEWAY, "chat", "--session", session_id], env, tmp_path)
    try:
        await terminal.expect(rf"Connected to \S+: session {session_id}\.")
        await terminal.expect("> ")
        terminal.type(CTRL_D)
        assert await terminal.exit_status() == 0
    finally:
        terminal.close()
    assert "Traceback" not in terminal.output

    # The gateway shutting down while the person sits at the prompt is said at once.
    terminal = Terminal([GATEWAY, "chat"], env, tmp_path)
    try:
        await terminal.expect("> ")
        server.send_signal(signal.SIGTERM)
        await terminal.expect(r"agentspace-gateway: the gateway shut down \(close code 1001\)")
        assert await terminal.exit_status() == 1
    finally:
        terminal.close()
    assert "Traceback" not in terminal.output


async def test_sessions_shows_the_latest_page_and_all_on_request(tmp_path: Path, gateway) -> None:
    port, env, _ = gateway
    more_than_a_page = SESSIONS_SHOWN + 5
    async with open_database(Home(Path(env["AGENTSPACE_HOME"])), Config()) as database:
        repository = SessionRepository(database)
        for _ in range(more_than_a_page):
            await repository.create(agent_id="default", model="claude-sonnet-5-5")
    everything = await ask_directly(port, {"type": "session.list", "id": "l"})
    ids = [session["sessionId"] for session in everything["sessions"]]
    assert len(ids) == more_than_a_page
    oldest = everything["sessions"][-1]

    terminal = Terminal([GATEWAY, "chat"], env, tmp_path)
    try:
        await terminal.expect("> ")
        terminal.type("/sessions\n")
        page = await terminal.expect(r"\n> ")
        assert listed(page) == ids[:SESSIONS_SHOWN]
        assert (
            f"(the {SESSIONS_SHOWN} most recently active sessions; there are more: "
            "/sessions all lists every one)"
        ) in page

        terminal.type("/sessions all\n")
        every = await terminal.expect(r"\n> ")
        assert listed(every) == ids
        assert "there are more" not in every

        # A session past the first page is found all the same, by id or by key.
        terminal.type(f"/session {oldest['sessionKey']}\n")
        await terminal.expect(rf"Continuing session {oldest['sessionId']}\.\n> ")
        terminal.type("/session nope\n")
        await terminal.expect(r"No session 'nope': /sessions \(or agentspace-gateway sessions\)")
        terminal.type("hello again\n")
        await terminal.expect(r"\| claude-sonnet-5-5\]\n> ")
        terminal.type("/sessions\n")
        page = await terminal.expect(r"\n> ")
        assert listed(page) == [f"*{oldest['sessionId']}", *ids[: SESSIONS_SHOWN - 1]]

        terminal.type("/sessions everything\n")
        assert "/sessions all every one." in await terminal.expect(r"\n> ")
        terminal.type(CTRL_D)
        assert await terminal.exit_status() == 0
    finally:
        terminal.close()
    assert "Traceback" not in terminal.output
    # The chat went to the session chosen, not to a new one.
    assert "(new session" not in terminal.output
