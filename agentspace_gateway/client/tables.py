"""Plain-text tables and the number formats every report shares."""

from collections.abc import Collection, Sequence
from typing import Any


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; numbers (``right``) aligned
    on the right so their digits line up."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    lines = []
    for row in (headers, *rows):
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def money(value: Any) -> str:
    """USD to the millionth of a dollar: a short reply costs well under a cent."""
    return f"${_number(value):,.6f}"


def count(value: Any) -> str:
    return f"{int(_number(value)):,}"


def _number(value: Any) -> float:
    # A field a newer or older gateway leaves out shows as 0 rather than failing the report.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
