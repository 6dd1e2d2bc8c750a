//! The knowledge base: each dealership's documents, from upload to retrieval.
//!
//! Upload (`api::documents`) stores the original bytes in the database and queues the
//! document; the ingestion worker ([`ingest`]) extracts its text ([`extract`]), cuts it
//! into token-bounded chunks with their heading and page ([`chunk`]), embeds them and
//! writes them to the configured [`store::VectorStore`]: the local store ([`local`],
//! vectors in the SQLite database with an in-process index per dealership), pgvector
//! ([`pgvector`]) or Pinecone ([`pinecone`]). [`retriever::DocumentRetriever`] answers the
//! conversation's `Retriever` port from that store, always filtered by dealership.

pub mod chunk;
pub mod extract;
pub mod ingest;
pub mod local;
pub mod pgvector;
pub mod pinecone;
pub mod retriever;
pub mod store;
