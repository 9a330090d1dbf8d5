"""Upstream text holding UTF-16 halves: JSON may carry "\\ud800", which is no character.

Before the fix the reply was relayed with '?' for it (the writer's last resort), and storing
it failed the whole exchange with INTERNAL_ERROR, the reply lost. Now each lone half becomes
U+FFFD, a pair split across two deltas is joined again, and the client and the database get
the same text. (Surrogates *from clients* are refused by the wire codec: test_fuzz_protocol.)
"""

import logging

import pytest

from agentspace_gateway.home import Home
from agentspace_gateway.llm.sse_text import SurrogateMender

from chat_helpers import deltas, kinds, messages, send_chat
from fake_anthropic import Scenario
from wsclient import exchange

EMOJI = "\U0001f600"  # "\ud83d\ude00" in JSON


@pytest.mark.parametrize(
    ("chunks", "text"),
    [
        (["plain", " text"], "plain text"),
        (["a\ud800b"], "a\ufffdb"),  # a lone first half
        (["c\udc00d"], "c\ufffdd"),  # a lone second half
        (["\udc00\ud800"], "\ufffd\ufffd"),  # both halves, in the wrong order
        ([f"x{EMOJI}y"], f"x{EMOJI}y"),
        (["x\ud83d", "\ude00y"], f"x{EMOJI}y"),  # a pair split across two deltas
        (["x\ud83d", "", "\ude00"], f"x{EMOJI}"),
        (["x\ud83d", "y"], "x\ufffdy"),  # a first half the next delta does not complete
        (["x\ud83d", "\ud83d", "\ude00"], f"x\ufffd{EMOJI}"),
        (["end\ud83d"], "end\ufffd"),  # a first half at the very end
    ],
)
def test_the_mender_makes_any_deltas_well_formed(chunks: list[str], text: str) -> None:
    mender = SurrogateMender()
    pieces = [mender.feed(chunk) for chunk in chunks] + [mender.flush()]
    assert "".join(pieces) == text
    for piece in pieces:
        piece.encode("utf-8")  # each piece alone, as each goes out in its own frame


@pytest.mark.parametrize(
    ("chunks", "text"),
    [
        (["Hi ", "a\ud800b", " there"], "Hi a\ufffdb there"),
        (["split ", "\ud83d", "\ude00", "!"], f"split {EMOJI}!"),
        (["cut off\ud83d"], "cut off\ufffd"),
    ],
)
async def test_a_reply_with_surrogates_is_relayed_and_stored_alike(
    chat_client,
    fake_anthropic,
    home: Home,
    caplog: pytest.LogCaptureFixture,
    chunks: list[str],
    text: str,
) -> None:
    fake, _ = fake_anthropic
    fake.enqueue(Scenario(text_chunks=chunks), Scenario(text_chunks=["fine"]))
    caplog.set_level(logging.WARNING)
    async with chat_client.ws_connect("/gateway") as ws:
        frames = await send_chat(ws, "s1", "hello")
        assert kinds(frames)[-1] == "chat.stream.end", frames
        assert deltas(frames) == text
        session_id = frames[-1]["sessionId"]
        # The connection lives, and the session goes on with the reply as stored.
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"
        again = await send_chat(ws, "s2", "and?", sessionId=session_id)
        assert kinds(again)[-1] == "chat.stream.end", again

    assert messages(home) == [
        ("user", "hello", 1),
        ("assistant", text, 1),
        ("user", "and?", 1),
        ("assistant", "fine", 1),
    ]
    history = fake.message_requests[1].json["messages"]
    assert [m["content"] for m in history] == ["hello", text, "and?"]
    # Nothing fell through to the writer's '?' fallback, nor failed a handler.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
