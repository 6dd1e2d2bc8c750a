//! `[knowledge]`: uploads, chunking, the vector store and retrieval.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[knowledge]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// `auto` (local on SQLite, pgvector on PostgreSQL), `local`, `pgvector` or `pinecone`.
    pub vector_store: String,
    /// Largest accepted upload, bytes (larger: 413).
    pub max_upload_bytes: usize,
    /// Chunk size and overlap, in tokens of `tokenizer`.
    pub chunk_max_tokens: usize,
    /// Tokens shared by consecutive chunks of a section.
    pub chunk_overlap_tokens: usize,
    /// A Hugging Face `tokenizer.json` to count tokens with (the embedder's); when the
    /// file is missing, tokens are estimated from words.
    pub tokenizer: PathBuf,
    /// Passages retrieved per question.
    pub top_k: usize,
    /// Tokens of passages (title and text) given to the answer engine at most; the best
    /// passage is always given.
    pub context_max_tokens: usize,
    /// Fetch more candidates from the vector store and re-rank them with BM25 (reciprocal
    /// rank fusion with the vector ranking).
    pub lexical_fusion: bool,
    /// Texts embedded per call while ingesting (small batches keep live questions from
    /// waiting long behind an ingestion).
    pub embed_batch: usize,
    /// Files ingested for the first-run dealership (a folder of PDF/DOCX/Markdown/text).
    pub demo_dir: Option<PathBuf>,
    /// Zip and PDF limits applied before extraction.
    pub limits: crate::knowledge::extract::Limits,
    /// The in-process index of the local store.
    pub local: crate::knowledge::local::LocalIndexConfig,
    /// Pinecone index and key (the key from `ADAM__KNOWLEDGE__PINECONE__API_KEY`).
    pub pinecone: crate::knowledge::pinecone::PineconeConfig,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            vector_store: "auto".into(),
            max_upload_bytes: 20 * 1024 * 1024,
            chunk_max_tokens: 200,
            chunk_overlap_tokens: 40,
            tokenizer: PathBuf::from("models/minilm/tokenizer.json"),
            top_k: 8,
            context_max_tokens: 2048,
            lexical_fusion: true,
            embed_batch: 8,
            demo_dir: None,
            limits: Default::default(),
            local: Default::default(),
            pinecone: Default::default(),
        }
    }
}

impl KnowledgeSettings {
    /// Checks values that parse but cannot work (`postgres`: the database is PostgreSQL):
    /// `(dotted key, problem)`.
    pub fn validate(&self, postgres: bool) -> Result<(), (&'static str, String)> {
        match (self.vector_store.as_str(), postgres) {
            ("auto", _) | ("local", false) | ("pgvector", true) | ("pinecone", _) => {}
            ("local", true) => {
                return Err((
                    "knowledge.vector_store",
                    "`local` keeps vectors in SQLite; with PostgreSQL use `pgvector` (or `auto`)"
                        .into(),
                ));
            }
            ("pgvector", false) => {
                return Err((
                    "knowledge.vector_store",
                    "`pgvector` needs a PostgreSQL database.url; with SQLite use `local` (or `auto`)"
                        .into(),
                ));
            }
            (other, _) => {
                return Err((
                    "knowledge.vector_store",
                    format!("`{other}` is not one of auto, local, pgvector, pinecone"),
                ));
            }
        }
        if self.max_upload_bytes < 1024 {
            return Err(("knowledge.max_upload_bytes", "must be at least 1024".into()));
        }
        if self.chunk_max_tokens < 16 || self.chunk_overlap_tokens >= self.chunk_max_tokens {
            return Err((
                "knowledge.chunk_max_tokens",
                "must be at least 16 and larger than chunk_overlap_tokens".into(),
            ));
        }
        if !(1..=50).contains(&self.top_k) || self.embed_batch == 0 {
            return Err((
                "knowledge.top_k",
                "must be 1 to 50 (and embed_batch at least 1)".into(),
            ));
        }
        Ok(())
    }
}
