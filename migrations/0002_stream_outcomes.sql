-- 0002_stream_outcomes: what a streamed reply needs to keep so nothing billed is lost.
--
-- messages.complete: 0 for an assistant reply cut short (cancelled, upstream error, client
-- gone); its partial text is kept. messages.token_estimate: the tiktoken estimate stored
-- with the message, so inspecting a long session never re-tokenises its history.
--
-- usage_records keeps the cost split by component (integer nano-dollars) and the prices
-- used (USD per million tokens, as exact decimal text, in JSON), so history is never
-- re-priced; priced = 0 when no price was known; estimated_input_tokens is the gateway's
-- estimate for the request, to show how far the estimate runs off.

ALTER TABLE messages ADD COLUMN complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1));
ALTER TABLE messages ADD COLUMN token_estimate INTEGER CHECK (token_estimate >= 0);
ALTER TABLE messages ADD COLUMN request_id TEXT;

ALTER TABLE usage_records ADD COLUMN request_id TEXT;
ALTER TABLE usage_records ADD COLUMN input_cost_nanousd INTEGER NOT NULL DEFAULT 0
    CHECK (input_cost_nanousd >= 0);
ALTER TABLE usage_records ADD COLUMN output_cost_nanousd INTEGER NOT NULL DEFAULT 0
    CHECK (output_cost_nanousd >= 0);
ALTER TABLE usage_records ADD COLUMN cache_write_cost_nanousd INTEGER NOT NULL DEFAULT 0
    CHECK (cache_write_cost_nanousd >= 0);
ALTER TABLE usage_records ADD COLUMN cache_read_cost_nanousd INTEGER NOT NULL DEFAULT 0
    CHECK (cache_read_cost_nanousd >= 0);
ALTER TABLE usage_records ADD COLUMN priced INTEGER NOT NULL DEFAULT 1 CHECK (priced IN (0, 1));
ALTER TABLE usage_records ADD COLUMN prices TEXT;
ALTER TABLE usage_records ADD COLUMN estimated_input_tokens INTEGER
    CHECK (estimated_input_tokens >= 0);
ALTER TABLE usage_records ADD COLUMN stop_reason TEXT;

-- One usage row per upstream request: a retried write can never bill twice.
CREATE UNIQUE INDEX usage_records_request_id ON usage_records (request_id)
    WHERE request_id IS NOT NULL;
-- usage.query over a session within a time range.
CREATE INDEX usage_records_session_id_created_at ON usage_records (session_id, created_at);
