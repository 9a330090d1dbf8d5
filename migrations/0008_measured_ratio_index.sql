-- 0008_measured_ratio_index: each model's measured estimate accuracy, read from an index alone.
--
-- Every budget reservation reads the model's largest measured actual/estimated input ratio
-- over its 500 most recent measured requests (storage/budget_reservation.py), and checks it is
-- the one the amount was priced with. Through usage_records_model_created_at each of those
-- rows was a lookup into the table: 0.33 ms of the 0.40 ms the reservation statement took
-- over 100,000 rows. This index holds only measured rows (the same two conditions the reads
-- state, so SQLite may use it), in the order the reads walk them (created_at, then id), with
-- the four token counts the ratio is made of: 0.07 ms. Estimate accuracy per model
-- (storage/estimate_accuracy.py) reads the same rows the same way.

CREATE INDEX usage_records_model_measured ON usage_records (
    model, created_at, id,
    estimated_input_tokens, input_tokens, cache_creation_input_tokens, cache_read_input_tokens
) WHERE estimated_input_tokens > 0
    AND input_tokens + cache_creation_input_tokens + cache_read_input_tokens > 0;
