-- The conversation a lead email is about: deleting the conversation (by an admin, by
-- retention or by an erasure request) deletes the email that quotes it. Lead emails queued
-- before this column are linked through the session id their text ends with.
ALTER TABLE email_outbox ADD COLUMN session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE;
UPDATE email_outbox o
SET session_id = s.id
FROM sessions s
WHERE o.kind = 'lead'
  AND s.id = substring(o.body_text from 'Session id: ([0-9a-f-]{36})');
CREATE INDEX email_outbox_session ON email_outbox(session_id);

-- Retention deletes each dealership's conversations that ended before a cutoff.
CREATE INDEX sessions_ended ON sessions(dealership_id, ended_at);
