//! The knowledge base: each dealership's documents, from upload to retrieval.
//!
//! Upload (`api::documents`) stores the original bytes in the database and queues the
//! document; the ingestion worker ([`ingest`]) extracts its text ([`extract`]), cuts it
//! into token-bounded chunks (tables first turned into one record per row, [`tables`]) with their heading and page ([`chunk`]), embeds them and
//! writes them to the configured [`store::VectorStore`]: the local store ([`local`],
//! vectors in the SQLite database with an in-process index per dealership), pgvector
//! ([`pgvector`]) or Pinecone ([`pinecone`]). [`retriever::DocumentRetriever`] answers the
//! conversation's `Retriever` port from that store, always filtered by dealership.
//! [`vocabulary`] draws each dealership's names from its chunks for speech recognition.

pub mod ask;
pub mod chunk;
pub mod extract;
pub mod ingest;
pub mod lexical;
pub mod local;
mod pdf_checks;
pub mod pgvector;
pub mod pinecone;
pub mod retriever;
mod settings;
pub use settings::KnowledgeSettings;
pub mod store;
pub mod tables;
pub mod vocabulary;

use std::sync::Arc;

use store::{StoreError, VectorStore};

use crate::db::Db;

/// The store `knowledge.vector_store` names (`auto`: local on SQLite, pgvector on
/// PostgreSQL), ready for vectors of `dimension`.
pub async fn open_store(
    k: &KnowledgeSettings,
    db: &Db,
    dimension: usize,
) -> Result<Arc<dyn VectorStore>, StoreError> {
    let store: Arc<dyn VectorStore> = match (k.vector_store.as_str(), db) {
        ("pinecone", _) => {
            let store = pinecone::PineconeStore::new(&k.pinecone).map_err(StoreError::Rejected)?;
            match store.dimension().await? {
                Some(d) if d != dimension => {
                    return Err(StoreError::Rejected(format!(
                        "the Pinecone index holds {d}-dimension vectors but the embedder makes {dimension}"
                    )));
                }
                _ => {}
            }
            Arc::new(store)
        }
        ("auto" | "pgvector", Db::Postgres(pool)) => {
            Arc::new(pgvector::PgVectorStore::open(pool.clone(), dimension).await?)
        }
        ("auto" | "local", Db::Sqlite(_)) => {
            Arc::new(local::LocalStore::open(db.clone(), k.local.clone()).await?)
        }
        (other, _) => {
            return Err(StoreError::Rejected(format!(
                "vector store `{other}` does not work with the {} database",
                db.kind()
            )));
        }
    };
    tracing::info!(store = store.kind(), dimension, "vector store ready");
    Ok(store)
}
