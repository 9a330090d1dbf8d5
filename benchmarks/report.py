"""The one table a run prints, and the JSON file it writes beside it."""

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import attrs


@attrs.define
class Figure:
    name: str
    value: float
    unit: str = ""
    target: str = ""
    # None: no target; else whether the target is met.
    met: bool | None = None
    digits: int = 2

    def shown(self) -> str:
        if math.isnan(self.value):
            return "n/a"
        if self.unit == "x":
            return f"{self.value:.{self.digits}f}"
        if abs(self.value) >= 1000 and self.digits <= 2:
            return f"{self.value:,.0f} {self.unit}".strip()
        return f"{self.value:,.{self.digits}f} {self.unit}".strip()


@attrs.define
class ScenarioResult:
    key: str
    title: str
    figures: list[Figure] = attrs.Factory(list)
    details: dict[str, Any] = attrs.Factory(dict)
    seconds: float = 0.0

    def add(self, name: str, value: float, unit: str = "", **kwargs: Any) -> Figure:
        figure = Figure(name, float(value), unit, **kwargs)
        self.figures.append(figure)
        return figure

    def check(
        self, name: str, value: float, unit: str, target: str, met: bool, **kwargs: Any
    ) -> Figure:
        return self.add(name, value, unit, target=target, met=met, **kwargs)

    def at_most(self, name: str, value: float, unit: str, limit: float | None) -> Figure:
        """A figure checked against an upper bound in its own unit, or plain without one."""
        if limit is None:
            return self.add(name, value, unit)
        return self.check(name, value, unit, f"<= {limit:g} {unit}", value <= limit)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_at_start": _loadavg(),
    }


def _loadavg() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "figure", "value", "target", "")]
    for result in results:
        for index, figure in enumerate(result.figures):
            verdict = "" if figure.met is None else ("ok" if figure.met else "MISS")
            rows.append(
                (
                    result.title if index == 0 else "",
                    figure.name,
                    figure.shown(),
                    figure.target,
                    verdict,
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = []
    for number, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(width) if column == 2 else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(
    path: Path, results: list[ScenarioResult], started: float, info: dict[str, Any]
) -> None:
    document = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {**info, "loadavg_at_end": _loadavg()},
        "scenarios": {
            result.key: {
                "title": result.title,
                "seconds": round(result.seconds, 1),
                "figures": [attrs.asdict(figure) for figure in result.figures],
                "details": result.details,
            }
            for result in results
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n")
