-- Dealership API keys: server-to-server credentials for the OpenAI-compatible realtime
-- endpoint and (scope `management`) the management API. Only a SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    dealership_id TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_by    TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_dealership ON api_keys(dealership_id, revoked_at);
