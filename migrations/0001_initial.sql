-- 0001_initial: the audit log, chat sessions and their messages, and the usage ledger.
--
-- Every timestamp is TEXT, ISO 8601 UTC with milliseconds (2026-11-28T09:00:00.123Z). That
-- form sorts as text in time order, so "newest first" is an ORDER BY on the column and an
-- index on it serves time ranges; the GLOB checks keep anything else out.
-- Tables are STRICT: a value of the wrong type is an error, never a silent conversion.
-- Deleting a session is not cascaded: the audit trail and the ledger outlive conversations.

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    event       TEXT NOT NULL CHECK (event <> ''),
    provider    TEXT,
    remote_addr TEXT,
    user_agent  TEXT,
    detail      TEXT,
    created_at  TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    )
) STRICT;

-- The rowid rides at the end of every index, so (created_at) also orders ties by id.
CREATE INDEX audit_log_created_at ON audit_log (created_at);
CREATE INDEX audit_log_provider_created_at ON audit_log (provider, created_at);

CREATE TABLE sessions (
    id             TEXT NOT NULL PRIMARY KEY,
    session_key    TEXT NOT NULL UNIQUE,
    agent_id       TEXT NOT NULL,
    model          TEXT NOT NULL,
    created_at     TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    last_active_at TEXT NOT NULL CHECK (
        last_active_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    )
) STRICT;

CREATE INDEX sessions_last_active_at ON sessions (last_active_at, id);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    role        TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    token_count INTEGER CHECK (token_count IS NULL OR token_count >= 0)
) STRICT;

CREATE INDEX messages_session_id ON messages (session_id, id);

-- Cost is an exact INTEGER count of nano-dollars (10^-9 USD), never a REAL. Per-token prices
-- are fractions of a cent, and binary floats cannot hold most of them exactly: summed over
-- thousands of requests the error shows up in the totals. Integers add exactly, SUM over
-- integers stays an integer (it raises on overflow instead of rounding), and a signed 64-bit
-- count of nano-dollars reaches about 9.2 billion USD.
CREATE TABLE usage_records (
    id                          INTEGER PRIMARY KEY,
    session_id                  TEXT NOT NULL REFERENCES sessions (id),
    model                       TEXT NOT NULL,
    input_tokens                INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens               INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0
        CHECK (cache_creation_input_tokens >= 0),
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_input_tokens >= 0),
    cost_nanousd                INTEGER NOT NULL CHECK (cost_nanousd >= 0),
    created_at                  TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    )
) STRICT;

CREATE INDEX usage_records_session_id_model ON usage_records (session_id, model);
CREATE INDEX usage_records_model_created_at ON usage_records (model, created_at);
CREATE INDEX usage_records_created_at ON usage_records (created_at);
