"""The terminal commands as a person runs them: real processes, a real `serve`, the fake upstream.

`chat --message`, `chat --json`, `usage` and `sessions` run as subprocesses against a
`serve` subprocess pointed at the in-process fake Anthropic; what they print is checked.
"""

import asyncio
import contextlib
import json
import re
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from attrs import frozen

from agentspace_gateway.cli import main
from agentspace_gateway.client.tables import count, money
from agentspace_gateway.home import Home

from chat_helpers import shape
from conftest import PASSPHRASE, TEST_API_KEY
from processes import BIN, free_port, gateway_env, running, wait_for_health_async

GATEWAY = str(BIN / "agentspace-gateway")
NOT_RUNNING = "no gateway is running for {home}; start one with: agentspace-gateway serve\n"


@frozen
class Result:
    status: int
    out: str
    err: str


async def cli(*argv: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> Result:
    """Run the command without blocking the loop the fake upstream runs on."""
    process = await asyncio.create_subprocess_exec(
        GATEWAY,
        *argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdin_bytes = stdin.encode() if stdin is not None else None
    out, err = await asyncio.wait_for(process.communicate(stdin_bytes), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, *flags: str, **env: str
) -> AsyncIterator[tuple[Path, int, dict[str, str]]]:
    """A `serve` process with a vault; yields its home, port and an environment for clients,
    which hold no Anthropic key of their own."""
    home, port = tmp_path / "home", free_port()
    server_env = gateway_env(home, PASSPHRASE, **env)
    with running([GATEWAY, "serve", "--port", str(port), *flags], server_env, tmp_path) as process:
        await wait_for_health_async(port, process)
        yield home, port, gateway_env(home, PASSPHRASE)


async def test_one_message_then_the_usage_and_session_reports(tmp_path: Path, fake_anthropic):
    fake, base_url = fake_anthropic
    upstream = {"ANTHROPIC_API_KEY": TEST_API_KEY, "ANTHROPIC_BASE_URL": base_url}
    async with serving(tmp_path, **upstream) as (_, port, env):
        first = await cli("chat", "--message", "hello", env=env, cwd=tmp_path)
        [session_id] = re.findall(r"session ([\w-]{21})", first.err)
        again = await cli(
            "chat", "--message", "and again", "--session", session_id, "--json",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        from_stdin = await cli("chat", "--message", "-", env=env, cwd=tmp_path, stdin="piped\n")
        # Reports only read: they can run side by side.
        table, report, mine, listing, listing_json = await asyncio.gather(
            cli("usage", env=env, cwd=tmp_path),
            cli("usage", "--json", env=env, cwd=tmp_path),
            cli("usage", "--session", session_id, env=env, cwd=tmp_path),
            cli("sessions", env=env, cwd=tmp_path),
            cli("sessions", "--json", "--url", f"http://127.0.0.1:{port}", env=env, cwd=tmp_path),
        )

    # The reply alone on stdout, so it can be captured; its usage and cost on stderr.
    assert (first.status, first.out) == (0, "Hello, world!\n")
    summary = r"\[\d+ tokens: \d+ in, 4 out \| \$0\.\d{6} \| claude-sonnet-5-5 \| session "
    assert re.fullmatch(summary + session_id + "\\]\n", first.err), first.err

    events = [json.loads(line) for line in again.out.splitlines()]
    assert again.status == 0, again.err
    assert shape(events) == ["chat.stream.start", "chat.stream.delta", "chat.stream.end"]
    assert "".join(e["delta"] for e in events[1:-1]) == "Hello, world!"
    assert {e["requestId"] for e in events} == {events[0]["requestId"]}
    end = events[-1]
    assert end["sessionId"] == session_id
    assert end["cost"]["totalCost"] > 0
    assert again.err == ""
    # The second message continued the first session: the upstream saw the whole history.
    assert [m["content"] for m in fake.message_requests[1].json["messages"]] == [
        "hello",
        "Hello, world!",
        "and again",
    ]

    assert report.status == 0
    usage = json.loads(report.out)
    [(model, row)] = usage["perModel"].items()
    grand = usage["grandTotal"]
    assert (row["requestCount"], grand["requestCount"]) == (3, 3)
    assert table.status == 0
    header, model_row, total_row = table.out.splitlines()
    assert header.split() == [
        "model", "requests", "input", "output", "cache", "write", "cache", "read", "tokens", "cost",
    ]  # fmt: skip
    assert model_row.split() == [
        model,
        "3",
        count(row["inputTokens"]),
        count(row["outputTokens"]),
        "0",
        "0",
        count(row["totalTokens"]),
        money(row["totalCost"], row["totalCostNanos"]),
    ]
    assert total_row.split() == [
        "total",
        "3",
        count(grand["totalTokens"]),
        money(grand["totalCost"], grand["totalCostNanos"]),
    ]
    assert mine.out.splitlines()[0] == f"usage of session {session_id}:"
    assert mine.out.splitlines()[2].split()[1] == "2"  # two of the three requests

    assert listing.status == 0
    lines = listing.out.splitlines()
    assert lines[0].split() == ["session", "model", "created", "messages"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[session_id][1] == "claude-sonnet-5-5"
    assert rows[session_id][3] == "4"
    assert len(rows) == 2
    sessions = [json.loads(line) for line in listing_json.out.splitlines()]
    counts = sorted((s["sessionId"] == session_id, s["messageCount"]) for s in sessions)
    assert counts == [(False, 2), (True, 4)]

    assert (from_stdin.status, from_stdin.out) == (0, "Hello, world!\n")
    assert fake.message_requests[2].json["messages"] == [{"role": "user", "content": "piped\n"}]


async def test_error_replies_exit_non_zero_with_the_message_on_stderr(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, _, env):
        no_key, no_key_json, no_session, bad_time, empty = await asyncio.gather(
            cli("chat", "--message", "hello", env=env, cwd=tmp_path),
            cli("chat", "--message", "hello", "--json", env=env, cwd=tmp_path),
            cli("chat", "--message", "hello", "--session", "nope", env=env, cwd=tmp_path),
            cli("usage", "--since", "yesterday", env=env, cwd=tmp_path),
            cli("usage", env=env, cwd=tmp_path),
        )

    advice = "Anthropic API key not configured. Run: agentspace-gateway keys add anthropic"
    assert (no_key.status, no_key.out) == (1, "")
    assert no_key.err == f"agentspace-gateway: {advice} (NO_API_KEY)\n"
    assert no_key_json.status == 1
    events = [json.loads(line) for line in no_key_json.out.splitlines()]
    assert [e["type"] for e in events] == ["session.created", "error"]
    assert events[1]["code"] == "NO_API_KEY"
    assert advice in no_key_json.err
    assert no_session.status == 1
    assert "No session 'nope'" in no_session.err
    assert "(SESSION_NOT_FOUND)" in no_session.err
    # A bad argument the gateway refuses is a usage error.
    assert bad_time.status == 2
    assert "since: must be an ISO 8601 time" in bad_time.err
    assert (empty.status, empty.out) == (0, "no usage recorded\n")


async def test_a_gateway_that_is_not_running_is_a_clear_error(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    # Where a gateway for this home would listen, were one running; nothing is.
    env = gateway_env(home, AGENTSPACE_SERVER_PORT=str(port))
    url = f"ws://127.0.0.1:{port}/gateway"
    *results, given = await asyncio.gather(
        cli("chat", "--message", "hello", env=env, cwd=tmp_path),
        cli("usage", env=env, cwd=tmp_path),
        cli("sessions", env=env, cwd=tmp_path),
        cli("sessions", "--url", url, env=env, cwd=tmp_path),
    )
    for result in results:
        assert (result.status, result.out) == (1, "")
        assert result.err == "agentspace-gateway: " + NOT_RUNNING.format(home=home)
    assert given.status == 1
    assert given.err.startswith(f"agentspace-gateway: no gateway answers at {url} (")
    assert "start one with: agentspace-gateway serve" in given.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sessions", "--url", "ftp://example"], "'ftp://example' is not a gateway URL"),
        (["chat", "--json"], "--json goes with --message"),
        (["chat", "--message", "  "], "the message is empty"),
    ],
)
def test_usage_errors(argv: list[str], message: str, home: Home, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


async def test_the_token_is_read_from_the_vault_when_the_gateway_wants_it(tmp_path: Path) -> None:
    # --allow-remote requires the token even on loopback; a client whose own configuration
    # says nothing of it finds out from close code 4401 and connects again with the token.
    async with serving(tmp_path, "--allow-remote") as (home, _, env):
        discovered = await cli("sessions", env=env, cwd=tmp_path)
        configured = await cli(
            "sessions", env={**env, "AGENTSPACE_GATEWAY_REQUIRE_TOKEN": "true"}, cwd=tmp_path
        )
        locked_env = {k: v for k, v in env.items() if k != "AGENTSPACE_VAULT_PASSPHRASE"}
        locked = await cli("sessions", env=locked_env, cwd=tmp_path)

    assert (discovered.status, discovered.out) == (0, "no sessions yet\n"), discovered.err
    assert (configured.status, configured.out) == (0, "no sessions yet\n"), configured.err
    assert locked.status == 1
    assert "requires its token, and it could not be read from the vault" in locked.err
    assert "AGENTSPACE_VAULT_PASSPHRASE" in locked.err

    with sqlite3.connect(home / "agentspace.db") as db:
        rows = db.execute("SELECT event, detail FROM audit_log ORDER BY id").fetchall()
    reads = [detail for event, detail in rows if event == "token.show"]
    assert len(reads) == 2
    assert all("read by the terminal client" in detail for detail in reads)
    # The clients that had to discover the requirement were turned away once each first:
    # the first refusal has a row of its own, the repeat within the minute is counted in the
    # aggregated row (so a flood of them cannot grow the log).
    denied = [detail for event, detail in rows if event == "access.denied"]
    assert denied == ["gateway: first frame was ping, not auth"]
    summaries = [detail for event, detail in rows if event == "access.rate_limited"]
    assert len(summaries) == 1
    assert summaries[0].startswith("gateway: 1 more wrong or missing credentials from 1 prefixes")
