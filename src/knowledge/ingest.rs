//! The knowledge service: upload, background ingestion, re-indexing and deletion of a
//! dealership's documents.
//!
//! Work is durable: a document is stored (with its bytes) as `queued` before the upload
//! returns, and the single worker takes ids from an in-memory queue. On startup every
//! document still `queued` or `processing` (the node stopped mid-way), and every ready
//! document whose vectors live in another store or came from another embedder, is queued
//! again, so a restart resumes the work and a change of store moves the documents.

use std::sync::{Arc, Weak};
use std::time::Instant;

use adam_actors::ports::{AnswerEngine, CancellationToken, Embedder, Passage};
use adam_actors::semantic_cache::SemanticCacheHandle;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::chunk::{Chunker, ChunkerConfig, TokenCounter};
use super::extract::{self, Limits, SniffError};
use super::store::{ChunkRecord, StoreError, VectorStore};
use crate::clock::Clock;
use crate::db::documents::{self, Document, NewChunk, status};
use crate::db::{Db, Tenant};
use crate::settings::KnowledgeSettings;

/// Longest a document's text extraction may take.
const EXTRACT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Not a PDF, Word document, Markdown or text file.
    #[error("{0}")]
    Unsupported(String),
    /// The content is a different type than the file name says.
    #[error("{0}")]
    Mismatch(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Why a deletion failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The vector store could not remove the vectors (nothing was deleted).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Ingestion series.
#[derive(Clone, Debug)]
struct IngestMetrics {
    documents: IntCounterVec,
    seconds: Histogram,
}

impl IngestMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            documents: IntCounterVec::new(
                Opts::new("documents_ingested_total", "Documents ingested by outcome"),
                &["outcome"],
            )?,
            seconds: Histogram::with_opts(
                HistogramOpts::new("document_ingest_seconds", "Time to ingest one document")
                    .buckets(vec![
                        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    ]),
            )?,
        };
        registry.register(Box::new(m.documents.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        Ok(m)
    }
}

/// A dealership's documents, from upload to searchable vectors.
pub struct Knowledge {
    db: Db,
    store: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    embedder_id: String,
    chunker: Chunker,
    limits: Limits,
    embed_batch: usize,
    semantic: SemanticCacheHandle,
    clock: Clock,
    answer: Arc<dyn AnswerEngine>,
    queue: mpsc::UnboundedSender<String>,
    metrics: IngestMetrics,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("store", &self.store.kind())
            .field("embedder", &self.embedder_id)
            .finish_non_exhaustive()
    }
}

/// Everything [`Knowledge::start`] needs.
pub struct KnowledgeDeps {
    /// Database.
    pub db: Db,
    /// Where vectors go.
    pub store: Arc<dyn VectorStore>,
    /// Embeds chunks (the conversation's embedder, so questions and chunks match).
    pub embedder: Arc<dyn Embedder>,
    /// Names the embedder (profile and dimension); a change re-embeds every document.
    pub embedder_id: String,
    /// Cleared for a dealership whenever its documents change.
    pub semantic: SemanticCacheHandle,
    /// Time source.
    pub clock: Clock,
    /// Told of every document indexed, so it can get ready to answer from it.
    pub answer: Arc<dyn AnswerEngine>,
}

impl Knowledge {
    /// Starts the ingestion worker and queues whatever a previous run left unfinished.
    pub async fn start(
        deps: KnowledgeDeps,
        settings: &KnowledgeSettings,
        registry: &Registry,
    ) -> anyhow::Result<Arc<Self>> {
        let counter = if settings.tokenizer.is_file() {
            TokenCounter::from_file(&settings.tokenizer).map_err(anyhow::Error::msg)?
        } else {
            tracing::warn!(
                tokenizer = %settings.tokenizer.display(),
                "tokenizer file missing; chunk sizes are estimated from words"
            );
            TokenCounter::Words
        };
        let chunker = Chunker::new(
            counter,
            ChunkerConfig {
                max_tokens: settings.chunk_max_tokens,
                overlap_tokens: settings.chunk_overlap_tokens,
            },
        )
        .map_err(anyhow::Error::msg)?;
        let (queue, rx) = mpsc::unbounded_channel();
        let knowledge = Arc::new(Self {
            db: deps.db,
            store: deps.store,
            embedder: deps.embedder,
            embedder_id: deps.embedder_id,
            chunker,
            limits: settings.limits,
            embed_batch: settings.embed_batch,
            semantic: deps.semantic,
            clock: deps.clock,
            answer: deps.answer,
            queue,
            metrics: IngestMetrics::new(registry)?,
        });
        tokio::spawn(worker(Arc::downgrade(&knowledge), rx));
        let pending = documents::pending(
            &knowledge.db,
            knowledge.store.kind(),
            &knowledge.embedder_id,
        )
        .await?;
        if !pending.is_empty() {
            tracing::info!(
                documents = pending.len(),
                store = knowledge.store.kind(),
                "documents queued for ingestion (unfinished, or indexed elsewhere)"
            );
        }
        for (id, _) in pending {
            knowledge.enqueue(id);
        }
        Ok(knowledge)
    }

    /// The vector store in use.
    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// Tokens in `text`, counted as chunks are (the embedder's tokenizer).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.chunker.count(text)
    }

    /// The embedder in use.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    fn enqueue(&self, id: String) {
        // The worker lives as long as `self`; a send can only fail during shutdown, and
        // the document stays queued in the database for the next start.
        let _ = self.queue.send(id);
    }

    /// Stores an upload as a queued document; ingestion continues in the background.
    pub async fn upload(
        &self,
        dealership_id: &str,
        client_filename: &str,
        bytes: &[u8],
        uploaded_by: Option<&str>,
    ) -> Result<Document, UploadError> {
        let kind = extract::sniff(bytes, client_filename).map_err(|e| match e {
            SniffError::Unsupported(why) => UploadError::Unsupported(why),
            mismatch @ SniffError::Mismatch { .. } => UploadError::Mismatch(mismatch.to_string()),
        })?;
        let now = self.clock.now();
        let doc = Document {
            id: crate::db::new_id(),
            dealership_id: dealership_id.to_owned(),
            filename: extract::display_name(client_filename),
            content_type: kind.mime().to_owned(),
            kind: kind.id().to_owned(),
            size_bytes: bytes.len() as i64,
            sha256: Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            status: status::QUEUED.to_owned(),
            error: None,
            chunk_count: 0,
            vector_store: None,
            embedder: None,
            uploaded_by: uploaded_by.map(str::to_owned),
            created_at: now,
            updated_at: now,
        };
        documents::insert(&self.db, &doc, bytes).await?;
        self.enqueue(doc.id.clone());
        Ok(doc)
    }

    /// Queues a document again (its vectors are replaced when it is done); `None` when
    /// the tenant has no such document.
    pub async fn reindex(
        &self,
        tenant: Tenant<'_>,
        id: &str,
    ) -> Result<Option<Document>, sqlx::Error> {
        let Some(_) = documents::get(&self.db, tenant, id).await? else {
            return Ok(None);
        };
        documents::set_status(&self.db, id, status::QUEUED, None, self.clock.now()).await?;
        self.enqueue(id.to_owned());
        documents::get(&self.db, tenant, id).await
    }

    /// Queues every document of the tenant again; returns how many.
    pub async fn reindex_all(&self, tenant: Tenant<'_>) -> Result<usize, sqlx::Error> {
        let ids = documents::ids(&self.db, tenant).await?;
        for (id, _) in &ids {
            documents::set_status(&self.db, id, status::QUEUED, None, self.clock.now()).await?;
            self.enqueue(id.clone());
        }
        Ok(ids.len())
    }

    /// Removes a document's vectors, then the document, and returns what was deleted;
    /// `None` when the tenant has no such document. If the store cannot remove the
    /// vectors, nothing is deleted.
    pub async fn delete(
        &self,
        tenant: Tenant<'_>,
        id: &str,
    ) -> Result<Option<Document>, DeleteError> {
        let Some(doc) = documents::get(&self.db, tenant, id).await? else {
            return Ok(None);
        };
        self.store.delete_document(&doc.dealership_id, id).await?;
        let deleted = documents::delete(&self.db, tenant, id).await?;
        self.semantic.clear(Some(&doc.dealership_id));
        Ok(deleted.then_some(doc))
    }

    /// Ingests every supported file of `dir` for `dealership_id` (the demo knowledge
    /// base on first run). Files are read in name order; a file that is refused is
    /// logged and skipped.
    pub async fn ingest_folder(
        &self,
        dealership_id: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<usize> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut queued = 0;
        for path in files {
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match self.upload(dealership_id, &name, &bytes, None).await {
                Ok(_) => queued += 1,
                Err(UploadError::Db(e)) => return Err(e.into()),
                Err(refused) => {
                    tracing::warn!(file = %path.display(), reason = %refused, "demo file skipped")
                }
            }
        }
        Ok(queued)
    }

    /// Ingests one document now (the worker's job; `adam eval` calls it directly).
    pub async fn process(&self, id: &str) {
        let started = Instant::now();
        let outcome = self.ingest(id).await;
        self.metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        let now = self.clock.now();
        match outcome {
            Ok(Some(chunks)) => {
                self.metrics.documents.with_label_values(&["ready"]).inc();
                tracing::info!(
                    document = id,
                    chunks,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "document ready"
                );
            }
            Ok(None) => {}
            Err(reason) => {
                self.metrics.documents.with_label_values(&["failed"]).inc();
                tracing::warn!(document = id, %reason, "document ingestion failed");
                if let Err(e) =
                    documents::set_status(&self.db, id, status::FAILED, Some(&reason), now).await
                {
                    tracing::error!(document = id, error = %e, "recording the failure failed");
                }
            }
        }
    }

    /// The chunks stored; `Ok(None)`: the document vanished (deleted meanwhile).
    async fn ingest(&self, id: &str) -> Result<Option<usize>, String> {
        let db_error = |e: sqlx::Error| format!("database error: {e}");
        if !documents::set_status(&self.db, id, status::PROCESSING, None, self.clock.now())
            .await
            .map_err(db_error)?
        {
            return Ok(None);
        }
        let (Some(doc), Some(bytes)) = (
            documents::get(&self.db, Tenant::All, id)
                .await
                .map_err(db_error)?,
            documents::bytes(&self.db, Tenant::All, id)
                .await
                .map_err(db_error)?,
        ) else {
            return Ok(None);
        };
        let kind = extract::sniff(&bytes, &doc.filename).map_err(|e| e.to_string())?;
        let limits = self.limits;
        // A malformed file can make a parser spin; the document fails after a deadline (the
        // blocking thread finishes on its own).
        let extraction =
            tokio::task::spawn_blocking(move || extract::extract(kind, &bytes, &limits));
        let sections = tokio::time::timeout(EXTRACT_DEADLINE, extraction)
            .await
            .map_err(|_| {
                format!(
                    "the {} took longer than {} s to read",
                    kind.label(),
                    EXTRACT_DEADLINE.as_secs()
                )
            })?
            .map_err(|e| format!("the extractor crashed: {e}"))?
            .map_err(|e| e.to_string())?;
        let chunks = self.chunker.chunk(&sections);
        if chunks.is_empty() {
            return Err("no text found in the document".into());
        }
        // Headings give a chunk its context for retrieval.
        let inputs: Vec<String> = chunks
            .iter()
            .map(|c| match &c.heading {
                Some(h) if !h.is_empty() => format!("{} — {h}: {}", doc.filename, c.text),
                _ => format!("{}: {}", doc.filename, c.text),
            })
            .collect();
        let mut vectors = Vec::with_capacity(inputs.len());
        for batch in inputs.chunks(self.embed_batch) {
            let out = self
                .embedder
                .embed(batch.to_vec(), CancellationToken::new())
                .await
                .map_err(|e| format!("embedding failed: {e}"))?;
            vectors.extend(out);
        }
        if vectors.len() != chunks.len() {
            return Err("the embedder returned the wrong number of vectors".into());
        }
        let rows: Vec<NewChunk> = chunks
            .iter()
            .enumerate()
            .map(|(seq, c)| NewChunk {
                id: crate::db::new_id(),
                seq: seq as i32,
                text: c.text.clone(),
                heading: c.heading.clone(),
                page: c.page.and_then(|p| i32::try_from(p).ok()),
            })
            .collect();
        let records: Vec<ChunkRecord> = rows
            .iter()
            .zip(vectors)
            .map(|(row, vector)| ChunkRecord {
                id: row.id.clone(),
                document_id: doc.id.clone(),
                seq: row.seq as u32,
                title: doc.filename.clone(),
                heading: row.heading.clone(),
                page: row.page.and_then(|p| u32::try_from(p).ok()),
                text: row.text.clone(),
                vector,
            })
            .collect();
        let tenant = doc.dealership_id.clone();
        self.store
            .delete_document(&tenant, id)
            .await
            .map_err(|e| format!("{e}; re-index the document to try again"))?;
        documents::replace_chunks(&self.db, &tenant, id, &rows)
            .await
            .map_err(db_error)?;
        self.store
            .upsert(&tenant, id, &records)
            .await
            .map_err(|e| format!("{e}; re-index the document to try again"))?;
        // Answers cached from before this version are forgotten before the document is
        // reported ready (the cache actor handles the clear before any later lookup).
        self.semantic.clear(Some(&tenant));
        // The answer engine embeds the new sentences now, off this document's way to
        // `ready`, rather than during a customer's first question about them.
        let passages: Vec<Passage> = records
            .iter()
            .map(|r| {
                super::store::passage(
                    r.document_id.clone(),
                    &r.title,
                    r.heading.as_deref(),
                    r.page,
                    r.text.clone(),
                    0.0,
                )
            })
            .collect();
        let answer = Arc::clone(&self.answer);
        tokio::spawn(async move { answer.prepare(passages).await });
        let ready = documents::set_ready(
            &self.db,
            id,
            rows.len() as i32,
            self.store.kind(),
            &self.embedder_id,
            self.clock.now(),
        )
        .await
        .map_err(db_error)?;
        if !ready {
            // Deleted while we worked: take the vectors back out.
            let _ = self.store.delete_document(&tenant, id).await;
            return Ok(None);
        }
        Ok(Some(rows.len()))
    }
}

async fn worker(knowledge: Weak<Knowledge>, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(id) = rx.recv().await {
        let Some(k) = knowledge.upgrade() else { break };
        k.process(&id).await;
    }
}
