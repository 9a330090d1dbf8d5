"""``--session ID`` where the id begins with '-'.

Session ids are nanoids: 21 characters of ``A-Za-z0-9_-``, so one in 32 begins with '-'.
argparse takes any word beginning with '-' for an option, and ``--session -x4...`` fails
with "expected one argument". ``--session=-x4...`` always works, and is what the client
prints; this also lets the spaced form through, for ids pasted from ``sessions``.
"""

import re
from collections.abc import Sequence

import nanoid.resources

# Exactly the shape the gateway's ids have, so a forgotten value (``--session --json``)
# still fails as a missing value rather than becoming a session named "--json".
_SESSION_ID = re.compile(rf"[{re.escape(nanoid.resources.alphabet)}]{{{nanoid.resources.size}}}")


def attach_session_ids(argv: Sequence[str]) -> list[str]:
    """``--session -abc...`` becomes ``--session=-abc...`` when the value is a session id."""
    attached: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":  # everything after it is an operand already
            attached.extend(argv[index:])
            break
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if word == "--session" and following.startswith("-") and _SESSION_ID.fullmatch(following):
            attached.append(f"--session={following}")
            index += 2
            continue
        attached.append(word)
        index += 1
    return attached
