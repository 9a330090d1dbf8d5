-- 0005_client_keys: keys for clients of the Anthropic-compatible HTTP API, and attribution.
--
-- A client key is shown once and stored only as the sha256 of the key: it carries 256
-- random bits, so a fast hash is enough (there is nothing to brute-force), and a lookup by
-- hash needs no scan. A name is unique among keys not revoked, so a revoked name can be
-- issued again while its history keeps pointing at the old row.
--
-- Proxied requests land in ordinary sessions. sessions.origin_client names the client key
-- that created one and external_id the caller's own session id (Claude Code's
-- x-claude-code-session-id, or x-agentspace-session-id), unique per client.
-- usage_records gains the client key and the caller's agent ids (Claude Code's
-- x-claude-code-agent-id and x-claude-code-parent-agent-id), so a subagent's spend shows.

CREATE TABLE client_keys (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL CHECK (name <> ''),
    key_sha256         TEXT NOT NULL UNIQUE CHECK (length(key_sha256) = 64),
    key_prefix         TEXT NOT NULL,
    created_at         TEXT NOT NULL CHECK (
        created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    expires_at         TEXT CHECK (
        expires_at IS NULL OR expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    revoked_at         TEXT CHECK (
        revoked_at IS NULL OR revoked_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    ),
    default_session_id TEXT REFERENCES sessions (id)
) STRICT;

CREATE UNIQUE INDEX client_keys_live_name ON client_keys (name) WHERE revoked_at IS NULL;

ALTER TABLE sessions ADD COLUMN origin_client INTEGER REFERENCES client_keys (id);
ALTER TABLE sessions ADD COLUMN origin_agent TEXT;
ALTER TABLE sessions ADD COLUMN external_id TEXT;

CREATE UNIQUE INDEX sessions_origin_external_id ON sessions (origin_client, external_id)
    WHERE external_id IS NOT NULL;

ALTER TABLE usage_records ADD COLUMN client_key_id INTEGER REFERENCES client_keys (id);
ALTER TABLE usage_records ADD COLUMN agent_id TEXT;
ALTER TABLE usage_records ADD COLUMN parent_agent_id TEXT;

CREATE INDEX usage_records_client_key_id_created_at ON usage_records (client_key_id, created_at)
    WHERE client_key_id IS NOT NULL;
