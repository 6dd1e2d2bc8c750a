-- A turn the documents did not answer ("I don't have that information") is a knowledge
-- gap of its dealership until re-asking it would be answered (GET /v1/knowledge-gaps).
-- gap_checked_at: when it was last re-asked after a document change (Unix seconds).
ALTER TABLE turns ADD COLUMN unanswered BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE turns ADD COLUMN gap_checked_at BIGINT;
CREATE INDEX turns_knowledge_gaps ON turns (dealership_id, started_at) WHERE unanswered;
