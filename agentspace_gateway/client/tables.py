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


def money(value: Any, nanos: Any = None) -> str:
    """USD to at least the millionth of a dollar: a short reply costs well under a cent.

    ``nanos``, the exact integer of nano-dollars the gateway sends beside each float, is
    preferred and written with every digit it has, so a total printed under its rows is
    their sum to the last digit; the float is the fallback for a gateway without it.
    """
    if isinstance(nanos, int) and not isinstance(nanos, bool):
        sign = "-" if nanos < 0 else ""
        whole, fraction = divmod(abs(nanos), 1_000_000_000)
        digits = f"{fraction:09d}".rstrip("0").ljust(6, "0")
        return f"{sign}${whole:,}.{digits}"
    return f"${_number(value):,.6f}"


def count(value: Any) -> str:
    return f"{int(_number(value)):,}"


def _number(value: Any) -> float:
    # A field a newer or older gateway leaves out shows as 0 rather than failing the report.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
