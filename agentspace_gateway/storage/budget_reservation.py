"""The check and the reservation as one statement: one hop to the writer's thread.

``BudgetStore.reserve`` checks with five or six statements, each a hop to aiosqlite's
thread and back (2.0 ms on the test machine). Here the budgets that apply, each one's spend
in its period and its open reservations, the model's measured estimate accuracy and the
insert are one ``INSERT ... SELECT``: run inside the writer's transaction like any write, so
no reservation or usage row lands between the sums and the insert, and awaited once; BEGIN
to COMMIT is one trip to the writer's thread (``Database.write_in_one_trip``). The measured
ratio is read from migration 0008's index of measured rows, touching no table row.

It inserts only when at least one budget applies, every one has room, and the model's
largest measured actual/estimated ratio is still the one the amount was priced with;
otherwise it inserts nothing and the caller goes the long way (``BudgetStore.reserve``),
which says which budget refused, or finds that none applies.
"""

from __future__ import annotations

from typing import Any

from agentspace_gateway.storage.estimate_accuracy import RECENT_REQUESTS

_ACTUAL = "input_tokens + cache_creation_input_tokens + cache_read_input_tokens"
_RECORDS_IN_PERIOD = " AND created_at >= applying.start AND created_at < applying.finish"


def _sum_of(table_and_filter: str, bounds: str) -> str:
    # Every piece is a constant of this module; the values are bound parameters.
    return f"(SELECT coalesce(sum(cost_nanousd), 0) FROM {table_and_filter}{bounds})"  # noqa: S608


def _spent(scope_filter: str) -> str:
    """A scoped budget's spend: its usage rows in the period (every one for ``total``)."""
    rows = f"usage_records WHERE priced = 1 AND {scope_filter}"
    return (
        f"CASE WHEN applying.start IS NULL THEN {_sum_of(rows, '')}"
        f" ELSE {_sum_of(rows, _RECORDS_IN_PERIOD)} END"
    )


def _global_spent(whole_hours: bool) -> str:
    """Everything spent in the period, read where ``BudgetStore`` reads it: the hourly sums
    when the period is unbounded or starts and ends on whole UTC hours, else the ledger."""
    bounded = (
        " WHERE hour >= substr(applying.start, 1, 13) AND hour < substr(applying.finish, 1, 13)"
    )
    in_period = (
        _sum_of("usage_hourly", bounded)
        if whole_hours
        else _sum_of("usage_records WHERE priced = 1", _RECORDS_IN_PERIOD)
    )
    return (
        f"CASE WHEN applying.start IS NULL THEN {_sum_of('usage_hourly', '')} ELSE {in_period} END"
    )


def _sums(whole_hours: bool) -> str:
    """The budgets that apply to a scope, each with its period's spend and what is held."""
    # An open reservation whose usage row is already written counts once: the row's cost as
    # spend and the rest of its worst case as reserved (BudgetStore's _standing).
    return f"""
WITH applying AS (
    SELECT id, scope_kind, scope_id, period, limit_nanousd, clip_max_tokens, created_at,
        CASE period WHEN 'day' THEN :day_start WHEN 'month' THEN :month_start END AS start,
        CASE period WHEN 'day' THEN :day_end WHEN 'month' THEN :month_end END AS finish
    FROM budgets
    WHERE scope_kind = 'global'
       OR (scope_kind = 'session' AND scope_id = :session_id)
       OR (scope_kind = 'client' AND scope_id = CAST(:client_key_id AS TEXT))
       OR (scope_kind = 'agent' AND scope_id = :agent_id)
),
held AS (
    SELECT r.session_id, r.client_key_id, r.agent_id,
        max(r.amount_nanousd - coalesce((SELECT u.cost_nanousd FROM usage_records u
            WHERE u.request_id = r.request_id AND u.priced = 1), 0), 0) AS amount
    FROM budget_reservations r WHERE r.state = 'open'
),
standing AS (
    SELECT applying.*,
        CASE scope_kind
            WHEN 'global' THEN {_global_spent(whole_hours)}
            WHEN 'session' THEN {_spent("session_id = :session_id")}
            WHEN 'client' THEN {_spent("client_key_id = :client_key_id")}
            ELSE {_spent("agent_id = :agent_id")}
        END AS spent,
        (SELECT coalesce(sum(held.amount), 0) FROM held WHERE CASE applying.scope_kind
            WHEN 'global' THEN 1
            WHEN 'session' THEN held.session_id = :session_id
            WHEN 'client' THEN held.client_key_id = :client_key_id
            ELSE held.agent_id = :agent_id END) AS reserved
    FROM applying
)"""  # noqa: S608


def _statement(whole_hours: bool) -> str:
    # The pieces put in are this module's constants; every value is a bound parameter.
    return f"""{_sums(whole_hours)},
measured AS (
    SELECT CAST({_ACTUAL} AS REAL) / estimated_input_tokens AS ratio
    FROM usage_records
    WHERE model = :model AND estimated_input_tokens > 0 AND {_ACTUAL} > 0
    ORDER BY created_at DESC, id DESC
    LIMIT {RECENT_REQUESTS}
)
INSERT INTO budget_reservations (request_id, session_id, client_key_id, agent_id, model,
    amount_nanousd, state, created_at)
SELECT :request_id, :session_id, :client_key_id, :agent_id, :model, :amount, 'open', :now
WHERE EXISTS (SELECT 1 FROM applying)
  AND NOT EXISTS (
      SELECT 1 FROM standing WHERE max(0, limit_nanousd - spent - reserved) < :amount)
  AND (SELECT max(ratio) FROM measured) IS :ratio
RETURNING id
"""  # noqa: S608


_STATEMENTS = {whole: _statement(whole) for whole in (False, True)}
# Each applying budget (its columns as BudgetStore reads them), spent, reserved, period end.
_STANDINGS = {
    whole: f"""{_sums(whole)}
SELECT id, scope_kind, scope_id, period, limit_nanousd, clip_max_tokens, created_at,
    spent, reserved, finish
FROM standing ORDER BY scope_kind, scope_id, period"""  # noqa: S608
    for whole in (False, True)
}


def standings_statement(
    *,
    whole_hours: bool,
    day: tuple[str | None, str | None],
    month: tuple[str | None, str | None],
    session_id: str | None,
    client_key_id: int | None,
    agent_id: str | None,
) -> tuple[str, dict[str, Any]]:
    """Every budget that applies to the scope as it stands, in one statement."""
    return _STANDINGS[whole_hours], _scope_parameters(
        day, month, session_id, client_key_id, agent_id
    )


def _scope_parameters(
    day: tuple[str | None, str | None],
    month: tuple[str | None, str | None],
    session_id: str | None,
    client_key_id: int | None,
    agent_id: str | None,
) -> dict[str, Any]:
    """What both statements are given about the scope and its periods."""
    return {
        "day_start": day[0],
        "day_end": day[1],
        "month_start": month[0],
        "month_end": month[1],
        "session_id": session_id,
        "client_key_id": client_key_id,
        "agent_id": agent_id,
    }


def reservation_statement(
    *,
    whole_hours: bool,
    day: tuple[str | None, str | None],
    month: tuple[str | None, str | None],
    session_id: str | None,
    client_key_id: int | None,
    agent_id: str | None,
    request_id: str,
    model: str,
    amount_nanousd: int,
    now: str,
    measured_ratio: float | None,
) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters. ``measured_ratio``: the model's largest measured
    actual/estimated input ratio the amount was priced with (None: none measured)."""
    return _STATEMENTS[whole_hours], {
        **_scope_parameters(day, month, session_id, client_key_id, agent_id),
        "request_id": request_id,
        "model": model,
        "amount": amount_nanousd,
        "now": now,
        "ratio": measured_ratio,
    }
