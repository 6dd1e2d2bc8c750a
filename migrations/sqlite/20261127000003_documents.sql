-- Document ingestion: the original file (so any node can re-index or serve it), the
-- detected kind, and where the vectors live (so a change of vector store or embedder
-- re-indexes what is elsewhere).
CREATE TABLE document_files (
    document_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    bytes       BLOB NOT NULL
);
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE documents ADD COLUMN vector_store TEXT;
ALTER TABLE documents ADD COLUMN embedder TEXT;
ALTER TABLE documents ADD COLUMN uploaded_by TEXT;
CREATE INDEX documents_status ON documents(status);
