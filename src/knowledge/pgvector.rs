//! pgvector: chunk vectors in the `chunks.embedding` column of PostgreSQL, searched
//! through an HNSW index (cosine) with the dealership filter in the same query. The
//! column has no fixed dimension in the schema; the index is an expression index on
//! `embedding::vector(N)` for the running embedder's N, created at startup, so changing
//! the embedder means a new index and re-embedding (done by the ingestion worker).

use adam_actors::ports::{BoxFuture, Passage};
use sqlx::PgPool;

use super::store::{ChunkRecord, StoreError, VectorStore};

/// The pgvector store.
#[derive(Debug, Clone)]
pub struct PgVectorStore {
    pool: PgPool,
    dimension: usize,
}

/// document id, file name, heading, page, text, score.
type Row = (String, String, Option<String>, Option<i32>, String, f32);

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("pgvector: {e}"))
}

/// `[x,y,…]`, pgvector's text form.
pub fn literal(vector: &[f32]) -> String {
    let mut out = String::with_capacity(vector.len() * 10 + 2);
    out.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Non-finite values are not valid vector elements.
        let x = if x.is_finite() { *x } else { 0.0 };
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

impl PgVectorStore {
    /// Prepares the HNSW index for vectors of `dimension` and forgets vectors of any
    /// other dimension (their documents are re-embedded by the ingestion worker).
    pub async fn open(pool: PgPool, dimension: usize) -> Result<Self, StoreError> {
        if dimension == 0 || dimension > 2000 {
            return Err(StoreError::Rejected(format!(
                "pgvector's HNSW index takes 1 to 2000 dimensions, the embedder has {dimension}"
            )));
        }
        let dim = dimension as i32;
        sqlx::query(
            "UPDATE chunks SET embedding = NULL WHERE embedding IS NOT NULL AND vector_dims(embedding) <> $1",
        )
        .bind(dim)
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_{dimension} ON chunks \
             USING hnsw ((embedding::vector({dimension})) vector_cosine_ops)"
        )))
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self { pool, dimension })
    }
}

impl VectorStore for PgVectorStore {
    fn kind(&self) -> &'static str {
        "pgvector"
    }

    fn upsert<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
        chunks: &'a [ChunkRecord],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(bad) = chunks.iter().find(|c| c.vector.len() != self.dimension) {
                return Err(StoreError::Rejected(format!(
                    "vector of {} dimensions for an index of {}",
                    bad.vector.len(),
                    self.dimension
                )));
            }
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            for c in chunks {
                sqlx::query(
                    "UPDATE chunks SET embedding = $1::vector WHERE id = $2 AND document_id = $3 \
                     AND dealership_id = $4",
                )
                .bind(literal(&c.vector))
                .bind(&c.id)
                .bind(document_id)
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)
        })
    }

    fn delete_document<'a>(
        &'a self,
        tenant: &'a str,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE chunks SET embedding = NULL WHERE document_id = $1 AND dealership_id = $2",
            )
            .bind(document_id)
            .bind(tenant)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn search<'a>(
        &'a self,
        tenant: &'a str,
        vector: &'a [f32],
        k: usize,
    ) -> BoxFuture<'a, Result<Vec<Passage>, StoreError>> {
        Box::pin(async move {
            if vector.len() != self.dimension {
                return Err(StoreError::Rejected(format!(
                    "query vector of {} dimensions for an index of {}",
                    vector.len(),
                    self.dimension
                )));
            }
            let d = self.dimension;
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            // With a filter, an HNSW scan may stop before it found k rows of this
            // dealership; iterative scans go on until it has them.
            sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT c.document_id, d.filename, c.heading, c.page, c.text, \
                     (1 - (c.embedding::vector({d}) <=> $1::vector({d})))::float4 AS score \
                     FROM chunks c JOIN documents d ON d.id = c.document_id \
                     WHERE c.dealership_id = $2 AND c.embedding IS NOT NULL \
                     ORDER BY c.embedding::vector({d}) <=> $1::vector({d}) LIMIT $3"
            )))
            .bind(literal(vector))
            .bind(tenant)
            .bind(k as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .map(|(document_id, title, heading, page, text, score)| {
                    super::store::passage(
                        document_id,
                        &title,
                        heading.as_deref(),
                        page.and_then(|p| u32::try_from(p).ok()),
                        text,
                        score,
                    )
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_written_in_pgvector_text_form() {
        assert_eq!(literal(&[0.5, -1.0, f32::NAN]), "[0.5,-1,0]");
        assert_eq!(literal(&[]), "[]");
    }
}
