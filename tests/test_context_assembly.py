"""ContextAssembler keeps a rendered history until the session's messages change."""

from __future__ import annotations

import pytest

from agentspace_gateway.chat.context_assembly import ContextAssembler
from agentspace_gateway.storage import Database, MessageRepository, NewMessage, SessionRepository
from agentspace_gateway.tokens import TokenEstimator

SYSTEM_PROMPT = "You are a helpful AI assistant."


class CountingEstimator(TokenEstimator):
    def __init__(self) -> None:
        super().__init__()
        self.counted: list[str] = []

    def count(self, text: str) -> int:
        self.counted.append(text)
        return super().count(text)


@pytest.fixture
def estimator() -> CountingEstimator:
    return CountingEstimator()


@pytest.fixture
def messages(db: Database) -> MessageRepository:
    return MessageRepository(db)


def assembler(
    messages: MessageRepository, estimator: TokenEstimator, **options: int
) -> ContextAssembler:
    return ContextAssembler(
        messages, estimator, system_prompt=SYSTEM_PROMPT, history_messages=50, **options
    )


async def new_session(db: Database) -> str:
    return (await SessionRepository(db).create(agent_id="main", model="m")).id


def history_of(context: object) -> object:
    return next(s for s in context.sections if s.name == "history")  # type: ignore[attr-defined]


async def test_an_unchanged_session_is_not_read_or_counted_again(
    db: Database, messages: MessageRepository, estimator: CountingEstimator
) -> None:
    session = await new_session(db)
    await messages.add(session, "user", "Legacy row: no estimate stored with it.")
    assemble = assembler(messages, estimator)

    first = await assemble.assemble(session, "m")
    counted = len(estimator.counted)
    second = await assemble.assemble(session, "m")

    assert history_of(second) is history_of(first)
    assert len(estimator.counted) == counted
    assert second.messages == first.messages
    assert second.messages is not first.messages  # a list of its own for each request


async def test_a_new_message_shows_at_once(db: Database, messages: MessageRepository) -> None:
    session = await new_session(db)
    await messages.add(session, "user", "Hello", token_estimate=1)
    assemble = assembler(messages, TokenEstimator())
    await assemble.assemble(session, "m")

    await messages.add(session, "assistant", "Hi there", token_estimate=2)
    context = await assemble.assemble(session, "m")

    assert history_of(context).content == "user: Hello\n\nassistant: Hi there"  # type: ignore[attr-defined]
    assert history_of(context).token_estimate == 3  # type: ignore[attr-defined]


async def test_a_pending_message_is_sent_last_and_never_kept(
    db: Database, messages: MessageRepository
) -> None:
    session = await new_session(db)
    await messages.add(session, "user", "First", token_estimate=1)
    await messages.add(session, "assistant", "Answer", token_estimate=1)
    pending = await messages.add(session, "user", "Second", token_estimate=1)
    assemble = assembler(messages, TokenEstimator())

    sending = await assemble.assemble(session, "m", pending=pending)
    inspected = await assemble.assemble(session, "m")

    assert [m["content"] for m in sending.messages] == ["First", "Answer", "Second"]
    assert history_of(sending).content == "user: First\n\nassistant: Answer"  # type: ignore[attr-defined]
    assert history_of(inspected).content == (  # type: ignore[attr-defined]
        "user: First\n\nassistant: Answer\n\nuser: Second"
    )


async def test_the_least_recently_used_history_goes_first(
    db: Database, messages: MessageRepository
) -> None:
    sessions = [await new_session(db) for _ in range(3)]
    for session in sessions:
        await messages.add(session, "user", "x" * 100, token_estimate=1)
    # Room for two rendered histories of 106 bytes, not three.
    assemble = assembler(messages, TokenEstimator(), cache_bytes=250)
    kept = {s: history_of(await assemble.assemble(s, "m")) for s in sessions[:2]}
    await assemble.assemble(sessions[0], "m")  # the first is now the most recent
    await assemble.assemble(sessions[2], "m")  # ...so the second is the one to go

    assert history_of(await assemble.assemble(sessions[0], "m")) is kept[sessions[0]]
    again = history_of(await assemble.assemble(sessions[1], "m"))
    assert again is not kept[sessions[1]]
    assert again == kept[sessions[1]]


async def test_a_history_larger_than_the_cache_is_not_kept(
    db: Database, messages: MessageRepository
) -> None:
    session = await new_session(db)
    await messages.add(session, "user", "y" * 500, token_estimate=1)
    assemble = assembler(messages, TokenEstimator(), cache_bytes=100)

    first = history_of(await assemble.assemble(session, "m"))
    second = history_of(await assemble.assemble(session, "m"))

    assert first == second
    assert first is not second


async def test_a_message_still_being_stored_is_left_out_of_the_history(
    db: Database, messages: MessageRepository
) -> None:
    session = await new_session(db)
    await messages.add(session, "user", "First", token_estimate=1)
    await messages.add(session, "assistant", "Answer", token_estimate=1, request_id="x1")
    pending = NewMessage(session, "user", "Second", token_estimate=1, request_id="x2")
    assemble = assembler(messages, TokenEstimator())

    before = await assemble.assemble(session, "m", pending=pending)
    await messages.add(session, "user", "Second", token_estimate=1, request_id="x2")
    after = await assemble.assemble(session, "m", pending=pending)

    # Whether or not the read already sees it, it goes last and once.
    assert before.messages == after.messages
    assert [m["content"] for m in after.messages] == ["First", "Answer", "Second"]
    with pytest.raises(ValueError, match="request_id"):
        await assemble.assemble(session, "m", pending=NewMessage(session, "user", "?"))
