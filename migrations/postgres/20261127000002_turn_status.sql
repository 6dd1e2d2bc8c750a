-- Turn outcome and stage timings, written by the conversation actor tree.
ALTER TABLE turns ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';
ALTER TABLE turns ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}';
