-- Per-dealership usage limits (a JSON object of overrides of the node's [limits]; only a
-- super_admin changes it), transcript retention in days (NULL: the node's default, 0: keep
-- forever) and the recording notice shown to customers (NULL: the node's default text).
ALTER TABLE dealerships ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE dealerships ADD COLUMN retention_days BIGINT;
ALTER TABLE dealerships ADD COLUMN recording_notice TEXT;

-- The work one turn cost (JSON: stt_seconds, prompt_tokens, completion_tokens,
-- tts_characters, audio_in_seconds, audio_out_seconds).
ALTER TABLE turns ADD COLUMN usage TEXT NOT NULL DEFAULT '{}';

-- Per-dealership totals by UTC day; kept when transcripts are deleted (retention), so
-- billing and monthly caps do not depend on how long transcripts are kept.
CREATE TABLE usage_daily (
    dealership_id      TEXT NOT NULL REFERENCES dealerships(id) ON DELETE CASCADE,
    day                TEXT NOT NULL,
    sessions           BIGINT NOT NULL DEFAULT 0,
    turns              BIGINT NOT NULL DEFAULT 0,
    stt_seconds        REAL NOT NULL DEFAULT 0,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    tts_characters     BIGINT NOT NULL DEFAULT 0,
    audio_in_seconds   REAL NOT NULL DEFAULT 0,
    audio_out_seconds  REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (dealership_id, day)
);
