-- Platform schema (SQLite). Ids are UUID text, times are unix seconds.
CREATE TABLE dealerships (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    allowed_origins TEXT NOT NULL DEFAULT '[]',   -- JSON array of origins allowed to embed
    persona         TEXT NOT NULL,                -- assistant system prompt
    voice           TEXT NOT NULL,
    avatar          TEXT NOT NULL DEFAULT '{}',   -- JSON object of avatar settings
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE embed_keys (
    id            TEXT PRIMARY KEY,
    dealership_id TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    key           TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX embed_keys_dealership ON embed_keys(dealership_id);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('super_admin', 'dealership_admin', 'user')),
    dealership_id       TEXT REFERENCES dealerships(id) ON DELETE CASCADE,
    display_name        TEXT NOT NULL DEFAULT '',
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    password_changed_at BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    CHECK ((role = 'super_admin') = (dealership_id IS NULL))
);
CREATE INDEX users_dealership ON users(dealership_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    login_at   BIGINT NOT NULL,   -- issued-at of the login that started the family
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    dealership_id TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    user_id       TEXT REFERENCES users(id) ON DELETE SET NULL,
    transport     TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT
);
CREATE INDEX sessions_dealership ON sessions(dealership_id, started_at);

CREATE TABLE turns (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    dealership_id  TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    user_text      TEXT NOT NULL,
    assistant_text TEXT NOT NULL,
    interrupted    BOOLEAN NOT NULL DEFAULT FALSE,
    citations      TEXT NOT NULL DEFAULT '[]',
    latency_ms     BIGINT,
    started_at     BIGINT NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    dealership_id TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error         TEXT,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX documents_dealership ON documents(dealership_id);

CREATE TABLE chunks (
    id            TEXT PRIMARY KEY,
    document_id   TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    dealership_id TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    text          TEXT NOT NULL,
    heading       TEXT,
    page          INTEGER,
    embedding     BLOB           -- little-endian f32 vector
);
CREATE INDEX chunks_dealership ON chunks(dealership_id);
CREATE INDEX chunks_document ON chunks(document_id);

CREATE TABLE email_outbox (
    id              TEXT PRIMARY KEY,
    dealership_id   TEXT REFERENCES dealerships(id) ON DELETE CASCADE,
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox(status, next_attempt_at);

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,   -- UUIDv7: sorts by time
    dealership_id TEXT,   -- no foreign key: the trail outlives a deleted dealership
    actor_user_id TEXT,
    action        TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);
CREATE INDEX audit_log_dealership ON audit_log(dealership_id, id);
