//! Documents (uploaded files), their original bytes, and their chunks' text.

use super::{Db, Tenant, on_pool};

/// Ingestion states.
pub mod status {
    /// Waiting for the ingestion worker.
    pub const QUEUED: &str = "queued";
    /// Being extracted, chunked and embedded.
    pub const PROCESSING: &str = "processing";
    /// Searchable.
    pub const READY: &str = "ready";
    /// Could not be ingested; `error` says why.
    pub const FAILED: &str = "failed";
}

/// A document row (without its bytes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Document {
    /// Unique id of the document.
    pub id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// Display name (sanitised; never a path).
    pub filename: String,
    /// MIME type decided from the content.
    pub content_type: String,
    /// `pdf`, `docx`, `markdown`, `text` or `csv`.
    pub kind: String,
    /// Size of the original file.
    pub size_bytes: i64,
    /// sha256 of the original file, hex.
    pub sha256: String,
    /// queued | processing | ready | failed.
    pub status: String,
    /// Why ingestion failed.
    pub error: Option<String>,
    /// Chunks stored.
    pub chunk_count: i32,
    /// Store holding its vectors once ready (`local`, `pgvector`, `pinecone`).
    pub vector_store: Option<String>,
    /// Embedder (name and dimension) its vectors came from.
    pub embedder: Option<String>,
    /// Uploader, if a user.
    pub uploaded_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, dealership_id, filename, content_type, kind, size_bytes, sha256, status, error, \
     chunk_count, vector_store, embedder, uploaded_by, created_at, updated_at";

/// A chunk row to insert.
#[derive(Debug, Clone)]
pub struct NewChunk {
    /// Unique id of the chunk.
    pub id: String,
    /// Position from 0.
    pub seq: i32,
    /// Text.
    pub text: String,
    /// Heading path.
    pub heading: Option<String>,
    /// 1-based page.
    pub page: Option<i32>,
}

/// Stores a new document (status `queued`) with its bytes, in one transaction.
pub async fn insert(db: &Db, doc: &Document, bytes: &[u8]) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO documents (id, dealership_id, filename, content_type, kind, size_bytes, sha256, \
             status, error, chunk_count, vector_store, embedder, uploaded_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&doc.id)
        .bind(&doc.dealership_id)
        .bind(&doc.filename)
        .bind(&doc.content_type)
        .bind(&doc.kind)
        .bind(doc.size_bytes)
        .bind(&doc.sha256)
        .bind(&doc.status)
        .bind(doc.error.as_deref())
        .bind(doc.chunk_count)
        .bind(doc.vector_store.as_deref())
        .bind(doc.embedder.as_deref())
        .bind(doc.uploaded_by.as_deref())
        .bind(doc.created_at)
        .bind(doc.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO document_files (document_id, bytes) VALUES ($1, $2)")
            .bind(&doc.id)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// The documents the tenant may see, newest first.
pub async fn list(db: &Db, tenant: Tenant<'_>) -> Result<Vec<Document>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Document>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM documents WHERE ($1 IS NULL OR dealership_id = $1) \
             ORDER BY created_at DESC, id"
        )))
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// One document, if visible to the tenant.
pub async fn get(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<Option<Document>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Document>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM documents WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)"
        )))
        .bind(id)
        .bind(tenant.filter())
        .fetch_optional(pool)
        .await
    })
}

/// The original file of a document visible to the tenant.
pub async fn bytes(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT f.bytes FROM document_files f JOIN documents d ON d.id = f.document_id \
             WHERE d.id = $1 AND ($2 IS NULL OR d.dealership_id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .fetch_optional(pool)
        .await
    })
}

/// Deletes a document with its file and chunks; false when it was not there.
pub async fn delete(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<bool, sqlx::Error> {
    on_pool!(db, |pool| {
        let done = sqlx::query(
            "DELETE FROM documents WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .execute(pool)
        .await?;
        Ok(done.rows_affected() > 0)
    })
}

/// Sets the status (and error) of a document; false when it no longer exists.
pub async fn set_status(
    db: &Db,
    id: &str,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    on_pool!(db, |pool| {
        let done = sqlx::query(
            "UPDATE documents SET status = $1, error = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() > 0)
    })
}

/// Marks a document ready with its chunk count and where its vectors live.
pub async fn set_ready(
    db: &Db,
    id: &str,
    chunk_count: i32,
    vector_store: &str,
    embedder: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    on_pool!(db, |pool| {
        let done = sqlx::query(
            "UPDATE documents SET status = 'ready', error = NULL, chunk_count = $1, vector_store = $2, \
             embedder = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(chunk_count)
        .bind(vector_store)
        .bind(embedder)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() > 0)
    })
}

/// Replaces a document's chunk rows (embedding empty: the vector store fills it).
pub async fn replace_chunks(
    db: &Db,
    dealership_id: &str,
    document_id: &str,
    chunks: &[NewChunk],
) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM chunks WHERE document_id = $1")
            .bind(document_id)
            .execute(&mut *tx)
            .await?;
        for c in chunks {
            sqlx::query(
                "INSERT INTO chunks (id, document_id, dealership_id, seq, text, heading, page) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.id)
            .bind(document_id)
            .bind(dealership_id)
            .bind(c.seq)
            .bind(&c.text)
            .bind(c.heading.as_deref())
            .bind(c.page)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Documents that must be (re)ingested at startup: queued or interrupted while
/// processing, or ready but indexed in another store or by another embedder.
pub async fn pending(
    db: &Db,
    vector_store: &str,
    embedder: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT id, dealership_id FROM documents WHERE status IN ('queued', 'processing') \
             OR (status = 'ready' AND (vector_store IS NULL OR vector_store <> $1 \
                 OR embedder IS NULL OR embedder <> $2)) \
             ORDER BY created_at, id",
        )
        .bind(vector_store)
        .bind(embedder)
        .fetch_all(pool)
        .await
    })
}

/// Ids of a tenant's documents (for re-indexing them all).
pub async fn ids(db: &Db, tenant: Tenant<'_>) -> Result<Vec<(String, String)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT id, dealership_id FROM documents WHERE ($1 IS NULL OR dealership_id = $1) ORDER BY created_at, id",
        )
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// What changes whenever a dealership's searchable documents do: (ready documents, their
/// chunks, the latest change in Unix seconds).
pub async fn ready_fingerprint(
    db: &Db,
    dealership_id: &str,
) -> Result<(i64, i64, i64), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT COUNT(*), COALESCE(SUM(chunk_count), 0), COALESCE(MAX(updated_at), 0) \
             FROM documents WHERE dealership_id = $1 AND status = 'ready'",
        )
        .bind(dealership_id)
        .fetch_one(pool)
        .await
    })
}

/// The text and heading of every chunk of a dealership's ready documents, in order.
pub async fn ready_chunk_texts(
    db: &Db,
    dealership_id: &str,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT c.text, c.heading FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.dealership_id = $1 AND d.status = 'ready' ORDER BY d.created_at, d.id, c.seq",
        )
        .bind(dealership_id)
        .fetch_all(pool)
        .await
    })
}
