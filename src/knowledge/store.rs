//! The vector store port: where chunk vectors live and how the nearest ones of one
//! dealership are found. Chunk text is always kept in the database too (it is the
//! source of truth for citations and re-indexing); a store may keep a copy of it
//! (Pinecone metadata) so a search needs no second round trip.

use adam_actors::ports::{BoxFuture, Passage};

/// One chunk with its vector, as a store receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// Chunk id (unique across dealerships).
    pub id: String,
    /// Its document.
    pub document_id: String,
    /// Position in the document, from 0.
    pub seq: u32,
    /// The document's display name (cited to the customer).
    pub title: String,
    /// Heading path of the section the chunk comes from ("Service > Hours"), if any.
    pub heading: Option<String>,
    /// 1-based page (PDF), if known.
    pub page: Option<u32>,
    /// The chunk text.
    pub text: String,
    /// Its embedding (any length; the store normalises as it needs).
    pub vector: Vec<f32>,
}

impl ChunkRecord {
    /// The passage a search returns for this chunk.
    pub fn passage(&self, score: f32) -> Passage {
        passage(
            self.document_id.clone(),
            &self.title,
            self.heading.as_deref(),
            self.page,
            self.text.clone(),
            score,
        )
    }
}

/// A search result as the conversation cites it: the document's name with the section
/// heading ("service-menu.pdf — Brakes"), the chunk text and its similarity.
pub fn passage(
    document_id: String,
    title: &str,
    heading: Option<&str>,
    page: Option<u32>,
    text: String,
    score: f32,
) -> Passage {
    Passage {
        document_id,
        title: match heading {
            Some(h) if !h.is_empty() => format!("{title} — {h}"),
            _ => title.to_owned(),
        },
        text,
        score,
        page,
    }
}

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The store could not be reached or failed (network, 5xx, database error).
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request (4xx, wrong dimension, bad configuration).
    #[error("vector store rejected the request: {0}")]
    Rejected(String),
}

/// Vectors of every dealership's chunks, searched with a dealership filter.
pub trait VectorStore: Send + Sync {
    /// `local`, `pgvector` or `pinecone` (recorded per document, so re-indexing knows
    /// which documents live elsewhere).
    fn kind(&self) -> &'static str;

    /// Replaces every chunk of `document_id` (of `tenant`) with `chunks`.
    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
        chunks: &'a [ChunkRecord],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes every chunk of `document_id` (of `tenant`); absent is not an error.
    fn delete_document<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The `k` chunks of `tenant` nearest to `vector` (cosine), best first. Never
    /// returns another dealership's chunk.
    fn search<'a>(
        &'a self,
        tenant: &'a str,
        vector: &'a [f32],
        k: usize,
    ) -> BoxFuture<'a, Result<Vec<Passage>, StoreError>>;
}
