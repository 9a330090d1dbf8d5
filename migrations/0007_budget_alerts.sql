-- 0007_budget_alerts: which alert thresholds of a budget have fired, per period.
--
-- A threshold (a percent of the limit) crossed raises one alert per budget and period. The
-- row is written in the same transaction that finds the crossing, and the unique key makes
-- a second finding (another request, a restarted gateway) a no-op, so an alert never fires
-- twice. period_start is the period's first instant as stored UTC text, '' for a total
-- budget (NULL would not be unique).

CREATE TABLE budget_alerts_fired (
    id                INTEGER PRIMARY KEY,
    budget_id         INTEGER NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start      TEXT NOT NULL,
    threshold_percent INTEGER NOT NULL CHECK (threshold_percent > 0),
    fired_at          TEXT NOT NULL CHECK (
        fired_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    UNIQUE (budget_id, period_start, threshold_percent)
) STRICT;
