"""Session ids beginning with '-': one nanoid in 32 does, and ``--session -x...`` must still
name the session rather than fail as a missing value. The hint the client prints on leaving
uses the ``--session=ID`` form, which works for every id."""

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from attrs import frozen

from agentspace_gateway.cli import build_parser
from agentspace_gateway.cli.context import open_database
from agentspace_gateway.cli.session_option import attach_session_ids
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.storage import SessionRepository

from conftest import PASSPHRASE, TEST_API_KEY
from processes import BIN, free_port, gateway_env, running, wait_for_health_async

GATEWAY = str(BIN / "agentspace-gateway")
DASHED = "-V1StGXR8_Z5jdHi6B-my"  # the shape of a real id: 21 characters, nanoid's alphabet


@pytest.mark.parametrize(
    ("argv", "attached"),
    [
        (["chat", "--session", DASHED], ["chat", f"--session={DASHED}"]),
        (["usage", "--session", "-" + DASHED[1:]], ["usage", f"--session={DASHED}"]),
        (["chat", "--session", "--" + DASHED[2:]], ["chat", f"--session=--{DASHED[2:]}"]),
        # Not an id: left for argparse, which reports the missing value as before.
        (["chat", "--session", "--json"], ["chat", "--session", "--json"]),
        (["chat", "--session", "-x"], ["chat", "--session", "-x"]),
        (["chat", "--session"], ["chat", "--session"]),
        (["chat", "--session", "abc"], ["chat", "--session", "abc"]),
        (["chat", "--", "--session", DASHED], ["chat", "--", "--session", DASHED]),
    ],
)
def test_attach_session_ids(argv: list[str], attached: list[str]) -> None:
    assert attach_session_ids(argv) == attached


@pytest.mark.parametrize("command", ["chat", "usage"])
def test_an_id_beginning_with_a_dash_parses_in_either_form(command: str) -> None:
    parser = build_parser()
    for argv in ([command, "--session", DASHED], [command, f"--session={DASHED}"]):
        assert parser.parse_args(attach_session_ids(argv)).session == DASHED
    with pytest.raises(SystemExit):  # what the spaced form did before
        parser.parse_args([command, "--session", DASHED])


async def dashed_session(home: Home) -> str:
    """A real session whose id begins with '-': ids are random, so make them until one does
    (32 tries on average; the bound fails once in 10^27 runs)."""
    async with open_database(home.ensure(), Config()) as database:
        sessions = SessionRepository(database)
        for _ in range(2000):
            session = await sessions.create(agent_id="default", model="claude-sonnet-5-5")
            if session.id.startswith("-"):
                return session.id
    raise AssertionError("no session id began with '-' in 2000 tries")


@frozen
class Result:
    status: int
    out: str
    err: str


async def cli(*argv: str, env: dict[str, str], cwd: Path, stdin: str = "") -> Result:
    process = await asyncio.create_subprocess_exec(
        GATEWAY,
        *argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_chat_continues_a_session_whose_id_begins_with_a_dash(
    tmp_path: Path, home: Home, fake_anthropic
) -> None:
    fake, base_url = fake_anthropic
    session_id = await dashed_session(home)
    port = free_port()
    upstream = {"ANTHROPIC_API_KEY": TEST_API_KEY, "ANTHROPIC_BASE_URL": base_url}
    server_env = gateway_env(home.root, PASSPHRASE, **upstream)
    with running([GATEWAY, "serve", "--port", str(port)], server_env, tmp_path) as process:
        await wait_for_health_async(port, process)
        env = gateway_env(home.root, PASSPHRASE)
        # Interactive (stdin is a pipe, so no prompt), then one message, then its usage.
        chatted = await cli("chat", "--session", session_id, env=env, cwd=tmp_path, stdin="hi\n")
        again = await cli(
            "chat", "--session", session_id, "--message", "again", "--json",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        usage = await cli("usage", "--session", session_id, env=env, cwd=tmp_path)

    assert chatted.status == 0, chatted.err
    lines = chatted.out.splitlines()
    assert lines[0].startswith(f"Connected to ws://127.0.0.1:{port}/gateway: session {session_id}.")
    assert "Hello, world!" in lines
    assert (
        lines[-1] == f"Continue this session with: agentspace-gateway chat --session={session_id}"
    )

    assert again.status == 0, again.err
    end = json.loads(again.out.splitlines()[-1])
    assert (end["type"], end["sessionId"]) == ("chat.stream.end", session_id)
    # Both messages went to the one session: the upstream saw the first exchange again.
    assert [m["content"] for m in fake.message_requests[1].json["messages"]] == [
        "hi",
        "Hello, world!",
        "again",
    ]
    assert usage.status == 0, usage.err
    assert usage.out.splitlines()[0] == f"usage of session {session_id}:"
