"""A chat.send reads only the messages stored since its session's last one; what it sends
must be exactly what reading the whole history afresh would give, however the session
changed in between (its own exchanges, another connection's, many at once)."""

from typing import Any

from agentspace_gateway.chat.context_assembly import ContextAssembler
from agentspace_gateway.storage import Database, MessageRepository, NewMessage, SessionRepository
from agentspace_gateway.tokens import TokenEstimator

HISTORY = 4


def assembler(messages: MessageRepository, estimator: TokenEstimator) -> ContextAssembler:
    return ContextAssembler(
        messages, estimator, system_prompt="Be brief.", history_messages=HISTORY
    )


async def sent(assembler: ContextAssembler, session_id: str, pending: NewMessage) -> Any:
    assembled = await assembler.assemble(session_id, "claude-fake-1", pending=pending)
    return assembled.messages, assembled.estimated_input_tokens


async def test_what_is_sent_equals_a_fresh_read_after_every_kind_of_change(db: Database) -> None:
    sessions, messages = SessionRepository(db), MessageRepository(db)
    estimator = TokenEstimator()
    session = await sessions.create(agent_id="main", model="claude-fake-1")
    other = await sessions.create(agent_id="main", model="claude-fake-1")
    kept = assembler(messages, estimator)
    # (messages stored before the send, whether the pending one is stored before the read)
    steps = [(0, False), (2, True), (1, False), (HISTORY + 3, True), (0, True), (3, False)]
    number = 0
    for added, stored_first in steps:
        for _ in range(added):
            number += 1
            role = "user" if number % 2 else "assistant"
            await messages.add(session.id, role, f"message {number}")
            await messages.add(other.id, "user", f"elsewhere {number}")
        number += 1
        pending = NewMessage(session.id, "user", f"pending {number}", request_id=f"r{number}")
        if stored_first:
            await messages.append(pending)
        got = await sent(kept, session.id, pending)
        expected = await sent(assembler(messages, estimator), session.id, pending)
        assert got == expected
        assert got[0][-1] == {"role": "user", "content": f"pending {number}"}
        if not stored_first:
            await messages.append(pending)
        # The reply, as the settle stores it.
        number += 1
        await messages.add(session.id, "assistant", f"reply {number}")

    final = await sent(kept, session.id, NewMessage(session.id, "user", "last", request_id="z"))
    contents = [m["content"] for m in final[0]]
    assert contents[-3:] == [f"pending {number - 1}", f"reply {number}", "last"]
    assert final == await sent(
        assembler(messages, estimator),
        session.id,
        NewMessage(session.id, "user", "last", request_id="z"),
    )
