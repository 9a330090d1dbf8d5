"""The real Claude Code CLI completes a turn through the gateway's Anthropic API.

`claude -p` with ANTHROPIC_BASE_URL at the gateway and a client key as ANTHROPIC_AUTH_TOKEN:
its requests reach the fake upstream with the provider key, and each one is in the ledger
under Claude Code's own session id, billed exactly what the fake reported.
"""

import asyncio
import json
import os
from pathlib import Path

import pytest

from agentspace_gateway.proxy.routes import PROXY

from claude_code import claude_code_bin
from fake_anthropic import Scenario
from proxy_helpers import (
    CACHE_READ_NANOS,
    CACHE_WRITE_NANOS,
    INPUT_NANOS,
    OUTPUT_NANOS,
    PROVIDER_KEY,
    Proxied,
    proxied_gateway,
)

MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="session")
def claude() -> Path:
    return claude_code_bin()


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    return await proxied_gateway(
        make_client, fake_anthropic, home, monkeypatch, client_name="claude-code"
    )


@pytest.mark.timeout(300)
async def test_claude_code_completes_a_turn_billed_to_the_nano_dollar(
    claude: Path, proxied: Proxied, tmp_path: Path
) -> None:
    proxied.fake.default = Scenario(
        text_chunks=["The answer", " is 4."],
        input_tokens=1200,
        output_tokens=9,
        cache_read_input_tokens=3000,
        cache_creation_input_tokens=400,
    )
    home = tmp_path / "claude-home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": proxied.base_url,
        "ANTHROPIC_AUTH_TOKEN": proxied.key.secret,
        "ANTHROPIC_MODEL": MODEL,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(claude),
        "-p",
        "What is 2 + 2?",
        "--output-format",
        "json",
        cwd=home,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()[-2000:]
    result = json.loads(stdout)
    assert result["is_error"] is False, result
    assert result["result"] == "The answer is 4."
    session_id = result["session_id"]

    turns = proxied.fake.message_requests
    assert turns, "Claude Code sent no /v1/messages request"
    for received in turns:
        assert received.headers["x-api-key"] == PROVIDER_KEY
        assert proxied.key.secret not in json.dumps(received.headers)
        assert received.query == "beta=true"
        assert "anthropic-beta" in received.headers

    origins = proxied.client.app[PROXY].origins
    session = await origins.find(proxied.key.client.id, session_id)
    assert session is not None, f"no session for Claude Code's {session_id}"
    rows = proxied.rows("SELECT * FROM usage_records WHERE session_id = ?", (session.id,))
    assert len(rows) == len(turns)
    per_request = (
        1200 * INPUT_NANOS + 9 * OUTPUT_NANOS + 3000 * CACHE_READ_NANOS + 400 * CACHE_WRITE_NANOS
    )
    assert per_request == 3_600_000 + 135_000 + 900_000 + 1_500_000
    for row in rows:
        assert row["client_key_id"] == proxied.key.client.id
        assert row["stop_reason"] == "end_turn"
        assert row["cost_nanousd"] == per_request
