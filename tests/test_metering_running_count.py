"""The running estimate of a streamed reply counts the same as the whole text counted at once,
however the text arrived in pieces and whenever it was counted."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from agentspace_gateway.metering.running_count import RunningCount
from agentspace_gateway.tokens import TokenEstimator

ESTIMATOR = TokenEstimator()
WORDS = st.sampled_from(
    ["Hello", " world", ",", "  ", "\n", "\n\n ", "日本語", " 12345", "don't", "!\n", " "]
)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=40),
    counted_at=st.sets(st.integers(min_value=0, max_value=40)),
)
def test_counted_as_it_grows_equals_counted_whole(pieces: list[str], counted_at: set[int]) -> None:
    async def run() -> None:
        running = RunningCount()
        parts: list[str] = []
        for number, piece in enumerate(pieces):
            parts.append(piece)
            if number in counted_at:
                assert await running.count(ESTIMATOR, parts) == ESTIMATOR.count("".join(parts))
        assert await running.count(ESTIMATOR, parts) == ESTIMATOR.count("".join(parts))

    asyncio.run(run())


async def test_a_long_text_without_spaces_is_estimated_within_a_token_a_cut() -> None:
    text = "語" * 20_000
    running = RunningCount()
    parts = [text[i : i + 1_000] for i in range(0, len(text), 1_000)]
    counts = [await running.count(ESTIMATOR, parts[: n + 1]) for n in range(len(parts))]
    whole = ESTIMATOR.count(text)
    # Cut without a space to cut at: an estimate, off by at most a token a cut.
    assert abs(counts[-1] - whole) <= len(parts)
    assert counts == sorted(counts)
