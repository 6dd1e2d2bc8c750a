-- The per-dealership lead-email throttle counts a dealership's recent lead emails.
CREATE INDEX email_outbox_dealership_kind ON email_outbox(dealership_id, kind, created_at);
