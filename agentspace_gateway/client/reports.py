"""The gateway's replies as text for a person: a reply's usage, an inspection, the usage
report and the session list. Each takes the frame as received and returns lines."""

from collections.abc import Mapping
from typing import Any

from agentspace_gateway.client.tables import count, money, table


def reply_summary(end: Mapping[str, Any], model: str | None, session: str | None = None) -> str:
    """One line after a reply (its chat.stream.end, or an error that carries the tokens
    billed): tokens, cost, model, and why it stopped if not the usual way."""
    usage = _mapping(end.get("usage"))
    cost = _mapping(end.get("cost"))
    out = f"{count(usage.get('outputTokens'))} out"
    if usage.get("estimated"):
        # A cut-off reply: the cl100k count of the text streamed, not Anthropic's.
        out += " (estimated)"
    parts = [f"{count(usage.get('inputTokens'))} in", out]
    if usage.get("cacheReadInputTokens"):
        parts.append(f"{count(usage['cacheReadInputTokens'])} cache read")
    if usage.get("cacheCreationInputTokens"):
        one_hour = usage.get("cacheCreation1hInputTokens")
        written = f"{count(usage['cacheCreationInputTokens'])} cache write"
        parts.append(written + (f" ({count(one_hour)} for 1 h)" if one_hour else ""))
    pieces = [f"{count(usage.get('totalTokens'))} tokens: {', '.join(parts)}"]
    if cost.get("priced", True):
        total = money(cost.get("totalCost"), cost.get("totalCostNanos"))
        if cost.get("priceSource") == "unknown_model":
            total += " at the [pricing.unknown_model] price"
        pieces.append(total)
    else:
        pieces.append(f'cost unknown: add [pricing."{model}"] to config.toml')
    if model:
        pieces.append(model)
    if session:
        pieces.append(f"session {session}")
    stop = end.get("stopReason")
    if stop == "cancelled":
        pieces.append("cancelled")
    elif stop not in (None, "end_turn"):
        pieces.append(f"stopped: {stop}")
    return "[" + " | ".join(pieces) + "]"


def resume_hint(session_id: str) -> str:
    # The '=' form: one id in 32 begins with '-', which "--session ID" would read as an option.
    return f"Continue this session with: agentspace-gateway chat --session={session_id}"


def inspection_report(frame: Mapping[str, Any]) -> list[str]:
    sections = [_mapping(section) for section in frame.get("sections") or []]
    totals = _mapping(frame.get("totals"))
    rows = [_section_row(section) for section in sections]
    rows.append(_section_row({"name": "total", **totals}))
    lines = [
        f"context of session {frame.get('sessionId')} for {frame.get('model')} "
        "(tokens and cost are estimates)",
        *table(("section", "bytes", "tokens", "cost"), rows, right={1, 2, 3}),
    ]
    ratio = frame.get("estimateRatio")
    if isinstance(ratio, int | float):
        lines.append(f"estimate ratio {ratio:.2f}: {_ratio_meaning(ratio)}")
    else:
        lines.append("estimate ratio: none yet (no request of this session is recorded)")
    spread = _mapping(frame.get("estimateSpread"))
    if spread:
        lines.append(
            f"per request ({count(spread.get('requestCount'))}): "
            f"{_times(spread.get('minRatio'))} to {_times(spread.get('maxRatio'))}, "
            f"median {_times(spread.get('medianRatio'))}, 80% within "
            f"{_times(spread.get('p10Ratio'))} to {_times(spread.get('p90Ratio'))}"
        )
    calibrated = _mapping(frame.get("calibrated"))
    if calibrated:
        basis = "this session's" if calibrated.get("basis") == "session" else "the model's"
        lines.append(
            f"calibrated estimate ({basis} ratio {_times(calibrated.get('ratio'))} over "
            f"{count(calibrated.get('requestCount'))} requests): "
            f"{count(calibrated.get('tokenEstimate'))} input tokens, "
            f"{money(calibrated.get('costEstimate'), calibrated.get('costEstimateNanos'))}"
            " (an estimate, not a count)"
        )
    if "exactInputTokens" in frame:
        lines.append(f"exact input tokens (Anthropic's count): {count(frame['exactInputTokens'])}")
    return lines


def usage_report(frame: Mapping[str, Any]) -> list[str]:
    """Per model; or, when the frame carries groups (groupBy client, agent or session), one
    row per group, with the models lacking a price still named under the table."""
    per_model = _mapping(frame.get("perModel"))
    if not per_model:
        return ["no usage recorded"]
    grand = _mapping(frame.get("grandTotal"))
    unpriced = [model for model, row in per_model.items() if not _mapping(row).get("priced", True)]
    groups = frame.get("groups")
    headers = _USAGE_HEADERS
    if isinstance(groups, list):
        by = str(frame.get("groupBy") or "group")
        headers = (by, *_USAGE_HEADERS[1:])
        entries = [_mapping(group) for group in groups]
        rows = [_usage_row(_group_name(by, group), group) for group in entries]
    else:
        rows = [_usage_row(model, _mapping(row)) for model, row in per_model.items()]
    grand_cost = money(grand.get("totalCost"), grand.get("totalCostNanos"))
    grand_cost += " *" if unpriced else ""
    requests, tokens = count(grand.get("requestCount")), count(grand.get("totalTokens"))
    rows.append(["total", requests, "", "", "", "", tokens, grand_cost])
    lines = table(headers, rows, right=range(1, len(headers)))
    if unpriced:
        prices = ", ".join(f'[pricing."{model}"]' for model in unpriced)
        lines.append(
            f"* no known price for some requests, counted as $0: add {prices} to config.toml"
        )
    return lines


def budgets_report(frame: Mapping[str, Any]) -> list[str]:
    """One row per budget of a budget.status.result, money from its integer nano-dollars."""
    budgets = [_mapping(budget) for budget in frame.get("budgets") or []]
    if not budgets:
        return ["no budgets (set one with: agentspace-gateway budgets set global 5 --period day)"]
    rows = [
        [
            _budget_name(budget),
            str(budget.get("period")),
            *(money(None, budget.get(f"{name}Nanos")) for name in _BUDGET_FIGURES),
            str(budget.get("resetsAt") or "never"),
        ]
        for budget in budgets
    ]
    headers = ("budget", "period", *_BUDGET_FIGURES, "resets")
    return table(headers, rows, right=range(2, 2 + len(_BUDGET_FIGURES)))


_BUDGET_FIGURES = ("limit", "spent", "reserved", "remaining")


def _budget_name(budget: Mapping[str, Any]) -> str:
    scope = budget.get("scope")
    if scope == "global":
        return "global"
    if scope == "client":
        return f"client:{budget.get('client') or '#' + str(budget.get('scopeId'))}"
    return f"{scope}:{budget.get('scopeId')}"


def sessions_report(frame: Mapping[str, Any], current: str | None = None) -> list[str]:
    """One row per session; with ``current``, a first column marks it with *."""
    sessions = [_mapping(session) for session in frame.get("sessions") or []]
    if not sessions:
        return ["no sessions yet"]
    headers = ("session", "model", "created", "messages")
    rows = [
        [
            str(session.get("sessionId", "")),
            str(session.get("model", "")),
            str(session.get("createdAt", "")),
            count(session.get("messageCount")),
        ]
        for session in sessions
    ]
    if current is None:
        return table(headers, rows, right={3})
    marked = [
        ["*" if current in (s.get("sessionId"), s.get("sessionKey")) else "", *row]
        for s, row in zip(sessions, rows, strict=True)
    ]
    return table(("", *headers), marked, right={4})


_USAGE_HEADERS = (
    "model",
    "requests",
    "input",
    "output",
    "cache write",
    "cache read",
    "tokens",
    "cost",
)


# A request over the WebSocket gateway has no client key, and one without Claude Code's agent
# header no agent: their group's key is null.
_NO_CLIENT = "(websocket)"
_NO_AGENT = "(none)"


def _group_name(by: str, group: Mapping[str, Any]) -> str:
    key, client = group.get("key"), group.get("client")
    if by == "agent":
        return f"{client or _NO_CLIENT}/{key or _NO_AGENT}"
    if by == "client":
        return str(key or _NO_CLIENT)
    return str(group.get("label") or key or _NO_AGENT)


def _section_row(section: Mapping[str, Any]) -> list[str]:
    return [
        str(section.get("name", "")),
        count(section.get("byteCount")),
        count(section.get("tokenEstimate")),
        money(section.get("costEstimate"), section.get("costEstimateNanos")),
    ]


def _usage_row(model: str, row: Mapping[str, Any]) -> list[str]:
    cost = money(row.get("totalCost"), row.get("totalCostNanos"))
    cost += "" if row.get("priced", True) else " *"
    return [
        model,
        count(row.get("requestCount")),
        count(row.get("inputTokens")),
        count(row.get("outputTokens")),
        count(row.get("cacheCreationInputTokens")),
        count(row.get("cacheReadInputTokens")),
        count(row.get("totalTokens")),
        cost,
    ]


def _times(value: Any) -> str:
    return f"x{value:.2f}" if isinstance(value, int | float) else "x?"


def _ratio_meaning(ratio: float) -> str:
    percent = round(abs(ratio - 1) * 100)
    if percent == 0:
        return "Anthropic's counts match the estimates"
    direction = "low" if ratio > 1 else "high"
    return f"the estimates run {percent}% {direction} against Anthropic's counts"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
