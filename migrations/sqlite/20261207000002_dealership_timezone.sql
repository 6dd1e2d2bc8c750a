-- The dealership's IANA time zone: "today" and "tomorrow" in a customer's question are its
-- days, not the server's.
ALTER TABLE dealerships ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
