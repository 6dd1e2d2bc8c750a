-- The conversation a lead email is about: deleting the conversation (by an admin, by
-- retention or by an erasure request) deletes the email that quotes it. Lead emails queued
-- before this column are linked through the session id their text ends with.
ALTER TABLE email_outbox ADD COLUMN session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE;
UPDATE email_outbox
SET session_id = substr(body_text, instr(body_text, 'Session id: ') + 12, 36)
WHERE kind = 'lead'
  AND instr(body_text, 'Session id: ') > 0
  AND substr(body_text, instr(body_text, 'Session id: ') + 12, 36) IN (SELECT id FROM sessions);
CREATE INDEX email_outbox_session ON email_outbox(session_id);

-- Retention deletes each dealership's conversations that ended before a cutoff.
CREATE INDEX sessions_ended ON sessions(dealership_id, ended_at);
