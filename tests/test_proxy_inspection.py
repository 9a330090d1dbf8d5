"""Kept request bodies of proxied sessions, and context.inspect over them."""

import asyncio
import gzip
import json
import stat

import pytest

from agentspace_gateway.proxy.kept_requests import KeptRequests
from agentspace_gateway.proxy.routes import PROXY
from agentspace_gateway.tokens import TokenEstimator

from fake_anthropic import Scenario
from proxy_helpers import PROVIDER_KEY, Proxied, issue, proxy_config
from wsclient import exchange

SYSTEM = [
    {"type": "text", "text": "You are Claude Code."},
    {"type": "text", "text": "Project rules: " + "be careful. " * 20},
]
TOOLS = [
    {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}},
    {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}},
]
MESSAGES = [
    {"role": "user", "content": "List the files."},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "I should run ls.", "signature": "c2ln"},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "a.py\nb.py"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR" * 400},
            },
        ],
    },
]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": SYSTEM, "tools": TOOLS}


async def proxied_with(make_client, fake_anthropic, home, monkeypatch, kept: int) -> Proxied:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url, kept_requests=kept))
    return Proxied(client, fake, await issue(client, "laptop"), home)


async def send(proxied: Proxied, messages: list[object]) -> str:
    proxied.fake.enqueue(Scenario(input_tokens=900, cache_read_input_tokens=100))
    response = await proxied.client.post(
        "/v1/messages",
        json={**BODY, "messages": messages},
        headers={
            "x-api-key": proxied.key.secret,
            "anthropic-version": "2023-06-01",
            "x-claude-code-session-id": "s-1",
        },
    )
    assert response.status == 200
    return response.headers["x-agentspace-request-id"]


async def test_context_inspect_shows_what_the_latest_request_carried(
    make_client, fake_anthropic, home, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, 20)
    await send(proxied, MESSAGES[:1])
    await send(proxied, MESSAGES)
    door = proxied.client.app[PROXY]
    await door.kept.flush()
    session = await door.origins.find(proxied.key.client.id, "s-1")
    assert session is not None

    async with proxied.client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "context.inspect", "id": "i1", "sessionId": session.id})
    assert reply["type"] == "context.inspection"
    sections = {section["name"]: section for section in reply["sections"]}
    assert list(sections) == [
        "system[0]",
        "system[1]",
        "tool:Bash",
        "tool:Read",
        "messages.user.text",
        "messages.assistant.thinking",
        "messages.assistant.tool_use",
        "messages.user.tool_result",
        "messages.user.image",
    ]
    assert sections["system[0]"]["content"] == "You are Claude Code."
    assert sections["messages.assistant.tool_use"]["content"] == '{"command":"ls"}'
    assert sections["messages.user.tool_result"]["content"] == "a.py\nb.py"
    # Bytes are the block's own JSON; the image is measured whole, its payload included.
    image = MESSAGES[2]["content"][1]  # type: ignore[index]
    assert sections["messages.user.image"]["byteCount"] == len(
        json.dumps(image, separators=(",", ":")).encode()
    )
    estimator = TokenEstimator()
    estimator.load()
    assert sections["system[0]"]["tokenEstimate"] == estimator.count("You are Claude Code.")
    # Anthropic's own count for that request: input 900 + cache read 100.
    assert reply["exactInputTokens"] == 1000
    assert reply["totals"]["tokenEstimate"] == sum(s["tokenEstimate"] for s in reply["sections"])


async def test_only_the_last_n_bodies_are_kept_compressed_and_private(
    make_client, fake_anthropic, home, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, 2)
    ids = [await send(proxied, [{"role": "user", "content": f"turn {n}"}]) for n in range(4)]
    await proxied.client.app[PROXY].kept.flush()
    (directory,) = (home.root / "proxy-requests").iterdir()
    files = sorted(directory.iterdir())
    assert [path.name.split("-", 2)[2] for path in files] == [f"{i}.json.gz" for i in ids[2:]]
    assert json.loads(gzip.decompress(files[-1].read_bytes()))["messages"][0]["content"] == "turn 3"
    assert stat.S_IMODE(files[-1].stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # The ledger keeps every request whatever is pruned.
    assert len(proxied.rows("SELECT * FROM usage_records")) == 4


@pytest.mark.parametrize("kept", [0])
async def test_kept_requests_0_keeps_none(
    make_client, fake_anthropic, home, monkeypatch, kept: int
) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, kept)
    await send(proxied, MESSAGES[:1])
    await proxied.client.app[PROXY].kept.flush()
    assert not (home.root / "proxy-requests").exists()


async def test_bodies_kept_in_a_burst_are_all_written_and_pruned_once_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 50 requests starting together, some arriving while the writer is already at work (one
    # worker-thread job writes every body waiting): none is lost, the newest 5 of each remain.
    kept = KeptRequests(tmp_path, 5)
    for number in range(30):
        kept.keep("session-a", f"a{number}", json.dumps({"n": number}).encode())
        kept.keep("session-b", f"b{number}", json.dumps({"n": number}).encode())
        if number % 7 == 0:
            await asyncio.sleep(0)  # let the writer start, so later bodies queue behind it
    await kept.flush()
    for session in ("a", "b"):
        latest = await kept.latest(f"session-{session}", count=10)
        assert [request_id for request_id, _ in latest] == [f"{session}{n}" for n in range(25, 30)]
        assert [json.loads(body)["n"] for _, body in latest] == list(range(25, 30))


async def test_a_new_gateway_prunes_the_bodies_an_earlier_one_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Kept names are remembered per session in memory; a restart finds the earlier files.
    first = KeptRequests(tmp_path, 3)
    for number in range(3):
        first.keep("session-a", f"a{number}", json.dumps({"n": number}).encode())
    await first.flush()
    second = KeptRequests(tmp_path, 2)
    second.keep("session-a", "a3", json.dumps({"n": 3}).encode())
    await second.flush()
    latest = await second.latest("session-a", count=10)
    assert [request_id for request_id, _ in latest] == ["a2", "a3"]
    assert len(list((tmp_path / "session-a").iterdir())) == 2
