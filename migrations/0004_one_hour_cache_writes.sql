-- 0004_one_hour_cache_writes: one-hour cache writes, and a flag for estimated output.
--
-- Anthropic bills a one-hour cache write at 2x the input price, a five-minute one at 1.25x,
-- and reports the split in usage.cache_creation. cache_creation_1h_input_tokens is the
-- one-hour part of cache_creation_input_tokens (a subset: the flat column stays the sum of
-- both, as Anthropic reports it), and cache_write_1h_cost_nanousd the one-hour part of
-- cache_write_cost_nanousd, so the cost components still add up to cost_nanousd on every
-- row, old or new. Existing rows keep their figures (0 here: nothing is re-priced).
--
-- output_estimated = 1 when output_tokens is the gateway's estimate of a reply cut off
-- before Anthropic reported its own count; a later, larger upstream figure replaces it.
--
-- usage_hourly keeps the one-hour tokens and the count of estimated rows too, so reports
-- over whole hours stay exact; the triggers of 0003 are replaced to keep them in step.

ALTER TABLE usage_records ADD COLUMN cache_creation_1h_input_tokens INTEGER NOT NULL DEFAULT 0
    CHECK (cache_creation_1h_input_tokens BETWEEN 0 AND cache_creation_input_tokens);
ALTER TABLE usage_records ADD COLUMN cache_write_1h_cost_nanousd INTEGER NOT NULL DEFAULT 0
    CHECK (cache_write_1h_cost_nanousd BETWEEN 0 AND cache_write_cost_nanousd);
ALTER TABLE usage_records ADD COLUMN output_estimated INTEGER NOT NULL DEFAULT 0
    CHECK (output_estimated IN (0, 1));

ALTER TABLE usage_hourly ADD COLUMN cache_creation_1h_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN estimated_count INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER usage_records_hourly_insert;
DROP TRIGGER usage_records_hourly_delete;
DROP TRIGGER usage_records_hourly_update;

CREATE TRIGGER usage_records_hourly_insert AFTER INSERT ON usage_records
BEGIN
    INSERT INTO usage_hourly (
        hour, model, input_tokens, output_tokens, cache_creation_input_tokens,
        cache_read_input_tokens, cost_nanousd, request_count, unpriced_count,
        cache_creation_1h_input_tokens, estimated_count
    )
    VALUES (
        substr(NEW.created_at, 1, 13), NEW.model, NEW.input_tokens, NEW.output_tokens,
        NEW.cache_creation_input_tokens, NEW.cache_read_input_tokens, NEW.cost_nanousd,
        1, NEW.priced = 0, NEW.cache_creation_1h_input_tokens, NEW.output_estimated
    )
    ON CONFLICT (hour, model) DO UPDATE SET
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = cache_creation_input_tokens
            + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens,
        cost_nanousd = cost_nanousd + excluded.cost_nanousd,
        request_count = request_count + 1,
        unpriced_count = unpriced_count + excluded.unpriced_count,
        cache_creation_1h_input_tokens = cache_creation_1h_input_tokens
            + excluded.cache_creation_1h_input_tokens,
        estimated_count = estimated_count + excluded.estimated_count;
END;

-- The ledger is only ever appended to; should a row be corrected or removed all the same,
-- the sums follow.
CREATE TRIGGER usage_records_hourly_delete AFTER DELETE ON usage_records
BEGIN
    UPDATE usage_hourly SET
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_creation_input_tokens = cache_creation_input_tokens
            - OLD.cache_creation_input_tokens,
        cache_read_input_tokens = cache_read_input_tokens - OLD.cache_read_input_tokens,
        cost_nanousd = cost_nanousd - OLD.cost_nanousd,
        request_count = request_count - 1,
        unpriced_count = unpriced_count - (OLD.priced = 0),
        cache_creation_1h_input_tokens = cache_creation_1h_input_tokens
            - OLD.cache_creation_1h_input_tokens,
        estimated_count = estimated_count - OLD.output_estimated
    WHERE hour = substr(OLD.created_at, 1, 13) AND model = OLD.model;
    DELETE FROM usage_hourly
    WHERE hour = substr(OLD.created_at, 1, 13) AND model = OLD.model AND request_count = 0;
END;

CREATE TRIGGER usage_records_hourly_update
AFTER UPDATE OF model, created_at, input_tokens, output_tokens, cache_creation_input_tokens,
    cache_read_input_tokens, cost_nanousd, priced, cache_creation_1h_input_tokens,
    output_estimated ON usage_records
BEGIN
    UPDATE usage_hourly SET
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_creation_input_tokens = cache_creation_input_tokens
            - OLD.cache_creation_input_tokens,
        cache_read_input_tokens = cache_read_input_tokens - OLD.cache_read_input_tokens,
        cost_nanousd = cost_nanousd - OLD.cost_nanousd,
        request_count = request_count - 1,
        unpriced_count = unpriced_count - (OLD.priced = 0),
        cache_creation_1h_input_tokens = cache_creation_1h_input_tokens
            - OLD.cache_creation_1h_input_tokens,
        estimated_count = estimated_count - OLD.output_estimated
    WHERE hour = substr(OLD.created_at, 1, 13) AND model = OLD.model;
    DELETE FROM usage_hourly
    WHERE hour = substr(OLD.created_at, 1, 13) AND model = OLD.model AND request_count = 0;
    INSERT INTO usage_hourly (
        hour, model, input_tokens, output_tokens, cache_creation_input_tokens,
        cache_read_input_tokens, cost_nanousd, request_count, unpriced_count,
        cache_creation_1h_input_tokens, estimated_count
    )
    VALUES (
        substr(NEW.created_at, 1, 13), NEW.model, NEW.input_tokens, NEW.output_tokens,
        NEW.cache_creation_input_tokens, NEW.cache_read_input_tokens, NEW.cost_nanousd,
        1, NEW.priced = 0, NEW.cache_creation_1h_input_tokens, NEW.output_estimated
    )
    ON CONFLICT (hour, model) DO UPDATE SET
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = cache_creation_input_tokens
            + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = cache_read_input_tokens + excluded.cache_read_input_tokens,
        cost_nanousd = cost_nanousd + excluded.cost_nanousd,
        request_count = request_count + 1,
        unpriced_count = unpriced_count + excluded.unpriced_count,
        cache_creation_1h_input_tokens = cache_creation_1h_input_tokens
            + excluded.cache_creation_1h_input_tokens,
        estimated_count = estimated_count + excluded.estimated_count;
END;
