"""A running token count of a growing text, for the estimate a cut-off reply is billed on.

The meter brings an open usage row up to the estimate of the text streamed once a second;
recounting the whole text each time made a long reply's updates quadratic.
"""

from agentspace_gateway.tokens import TokenEstimator

# A tail with no space to cut at (CJK, minified JSON) is cut anyway past this many
# characters: the estimate may then differ by a token or so at such a cut.
MAX_UNCOUNTED_CHARS = 8 * 1024


class RunningCount:
    """The cl100k count of a growing text, counting only what is new each time.

    Token counts do not add up across an arbitrary split, but they do across a split just
    before a space that follows a non-space: none of cl100k's pre-token patterns ends in a
    space, so a pre-token starts there in the whole text as in the tail alone. The text up
    to the last such point is counted once and kept; the rest (usually one word) is carried
    into the next count."""

    def __init__(self) -> None:
        self._folded = 0  # how many of the parts are in the counted prefix or the carry
        self._counted = 0  # the tokens of the counted prefix
        self._carry = ""

    async def count(self, estimator: TokenEstimator, parts: list[str]) -> int:
        folded = len(parts)
        tail = self._carry + "".join(parts[self._folded : folded])
        cut = _safe_cut(tail)
        prefix, rest = await estimator.count_many_async([tail[:cut], tail[cut:]])
        # Kept only once both are counted: a cancelled count leaves the state as it was.
        self._folded, self._counted, self._carry = folded, self._counted + prefix, tail[cut:]
        return self._counted + rest


def _safe_cut(text: str) -> int:
    """Where ``text`` can be split with the counts of both sides adding up: before its last
    space that follows a non-space (0 when there is none)."""
    at = text.rfind(" ")
    while at > 0:
        if not text[at - 1].isspace():
            return at
        at = text.rfind(" ", 0, at)
    return len(text) - 1 if len(text) > MAX_UNCOUNTED_CHARS else 0
