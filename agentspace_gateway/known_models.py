"""Which model ids genai-prices really lists, as opposed to ids its prefixes happen to match.

genai-prices resolves an id by its match rules, many of them prefixes
(``starts_with: claude-opus-4-6``), so ``claude-opus-4-60`` or ``claude-sonnet-4-5-foo``
resolve to a real model and would be billed as one. An id counts as listed only when it is
a name the rules spell out in full (an ``equals``, or a ``starts_with`` taken as a whole
name), that name plus a snapshot date (``-20250929``, ``@20250929``, ``-2025-09-29``), or
an id one of the rules' own anchored regexes matches whole.
"""

import re
from collections.abc import Iterator

from genai_prices.types import (
    ClauseEquals,
    ClauseOr,
    ClauseRegex,
    ClauseStartsWith,
    MatchLogic,
    ModelInfo,
)

_SNAPSHOT_DATE = re.compile(r"(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2})$")


def is_listed_id(info: ModelInfo, model: str) -> bool:
    """True when ``model`` is ``info``'s id, a name its rules list, or one of those dated."""
    wanted = model.lower()
    undated = _SNAPSHOT_DATE.sub("", wanted)
    names = {info.id.lower()}
    for clause in _clauses(info.match):
        if isinstance(clause, ClauseEquals):
            names.add(clause.equals.lower())
        elif isinstance(clause, ClauseStartsWith):
            names.add(clause.starts_with.lower())
        elif isinstance(clause, ClauseRegex) and re.fullmatch(clause.regex, model):
            return True
    return wanted in names or undated in names


def _clauses(match: MatchLogic) -> Iterator[MatchLogic]:
    if isinstance(match, ClauseOr):
        for clause in match.or_:
            yield from _clauses(clause)
    else:
        yield match
