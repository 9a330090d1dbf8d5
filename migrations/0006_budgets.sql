-- 0006_budgets: spending limits, and the reservations that keep them from being overshot.
--
-- A budget caps what one scope may spend in a period: a client key (scope_id is its id), a
-- session, an agent id, or everything (global, scope_id ''). Spend is the priced cost of the
-- usage rows in the period; the period's start is computed in the configured time zone.
--
-- Before a request goes upstream its worst-case cost is reserved, in the same write
-- transaction that sums spend and open reservations against every budget that applies, so
-- two requests can never both fit into the same remainder. Once the request ends its usage
-- row carries what was billed and the reservation is settled (released). A reservation
-- still open at startup belongs to a process that died: it is settled then.

CREATE TABLE budgets (
    id              INTEGER PRIMARY KEY,
    scope_kind      TEXT NOT NULL CHECK (scope_kind IN ('client', 'session', 'agent', 'global')),
    scope_id        TEXT NOT NULL CHECK ((scope_kind = 'global') = (scope_id = '')),
    period          TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
    limit_nanousd   INTEGER NOT NULL CHECK (limit_nanousd >= 0),
    clip_max_tokens INTEGER NOT NULL DEFAULT 0 CHECK (clip_max_tokens IN (0, 1)),
    created_at      TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    UNIQUE (scope_kind, scope_id, period)
) STRICT;

CREATE TABLE budget_reservations (
    id             INTEGER PRIMARY KEY,
    request_id     TEXT NOT NULL UNIQUE,
    session_id     TEXT,
    client_key_id  INTEGER,
    agent_id       TEXT,
    model          TEXT NOT NULL,
    amount_nanousd INTEGER NOT NULL CHECK (amount_nanousd >= 0),
    state          TEXT NOT NULL CHECK (state IN ('open', 'settled')),
    created_at     TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    settled_at     TEXT CHECK ((state = 'open') = (settled_at IS NULL))
) STRICT;

CREATE INDEX budget_reservations_open ON budget_reservations (state) WHERE state = 'open';
CREATE INDEX usage_records_agent_id_created_at ON usage_records (agent_id, created_at)
    WHERE agent_id IS NOT NULL;
