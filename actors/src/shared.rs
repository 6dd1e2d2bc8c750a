//! `Shared`: the node-wide handles every session and its children use (providers,
//! caches, the transcript sink, metrics). Built once at startup, cloned as an `Arc`.

use std::sync::Arc;

use crate::embedding_cache::EmbeddingCacheHandle;
use crate::metrics::ActorMetrics;
use crate::ports::{Providers, TranscriptSink};
use crate::semantic_cache::SemanticCacheHandle;

/// What every session of a node shares.
pub struct Shared {
    /// The providers every session talks to.
    pub providers: Providers,
    /// Query embeddings, shared across sessions.
    pub embeddings: EmbeddingCacheHandle,
    /// Answers to earlier questions, per dealership.
    pub semantic: SemanticCacheHandle,
    /// Where sessions and turns are recorded.
    pub sink: Arc<dyn TranscriptSink>,
    /// The actor tree's metrics.
    pub metrics: ActorMetrics,
}
