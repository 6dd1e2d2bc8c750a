-- Email: the outbox the worker sends from (it replaces the draft table of the platform
-- schema, which nothing wrote to), one-time links for invitations and password resets,
-- and the address a dealership's leads are sent to.
DROP TABLE email_outbox;
CREATE TABLE email_outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,   -- invite | password_reset | lead
    dealership_id   TEXT REFERENCES dealerships(id) ON DELETE CASCADE,
    to_addr         TEXT NOT NULL,
    reply_to        TEXT,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,   -- when due; while a node sends it, the end of its lease
    lease_id        TEXT,              -- the claim of the node that sends it
    last_error      TEXT,
    provider_ref    TEXT,              -- Mailgun's message id, the SMTP server's reply
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox(status, next_attempt_at);

-- Only the SHA-256 of a link's token is stored; the token itself is only in the email.
CREATE TABLE user_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'password_reset')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens(user_id);

ALTER TABLE dealerships ADD COLUMN lead_email TEXT;
