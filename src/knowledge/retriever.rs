//! The conversation's `Retriever` port, answered from the configured vector store with
//! the dealership filter applied by the store.

use std::sync::Arc;

use adam_actors::ports::{BoxFuture, CancellationToken, Passage, ProviderError, Retriever};

use super::store::{StoreError, VectorStore};

/// Retrieval over a dealership's documents.
pub struct DocumentRetriever {
    store: Arc<dyn VectorStore>,
}

impl DocumentRetriever {
    /// Searches `store`.
    pub fn new(store: Arc<dyn VectorStore>) -> Self {
        Self { store }
    }
}

impl Retriever for DocumentRetriever {
    fn retrieve<'a>(
        &'a self,
        tenant: &'a str,
        _query: &'a str,
        embedding: &'a [f32],
        k: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>> {
        Box::pin(async move {
            tokio::select! {
                found = self.store.search(tenant, embedding, k) => found.map_err(|e| match e {
                    StoreError::Unavailable(m) => ProviderError::Unavailable(m),
                    StoreError::Rejected(m) => ProviderError::Rejected(m),
                }),
                _ = cancel.cancelled() => Err(ProviderError::Cancelled),
            }
        })
    }
}
