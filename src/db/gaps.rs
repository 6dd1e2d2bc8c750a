//! Knowledge gaps: the turns a dealership's documents did not answer, and clearing them
//! once re-asking would be answered.

use super::{Db, Tenant, on_pool};

/// An unanswered turn.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GapTurn {
    /// Turn id.
    pub id: String,
    /// Its dealership.
    pub dealership_id: String,
    /// What the customer asked.
    pub user_text: String,
    /// Unix seconds.
    pub started_at: i64,
    /// When it was last re-asked after a document change (Unix seconds).
    pub gap_checked_at: Option<i64>,
}

/// The newest `limit` unanswered turns the tenant may see.
pub async fn unanswered(
    db: &Db,
    tenant: Tenant<'_>,
    limit: i64,
) -> Result<Vec<GapTurn>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, GapTurn>(
            "SELECT id, dealership_id, user_text, started_at, gap_checked_at FROM turns \
             WHERE unanswered AND ($1 IS NULL OR dealership_id = $1) \
             ORDER BY started_at DESC LIMIT $2",
        )
        .bind(tenant.filter())
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// When each of the tenant's dealerships last had a document indexed (Unix seconds).
pub async fn documents_changed(
    db: &Db,
    tenant: Tenant<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT dealership_id, MAX(updated_at) FROM documents \
             WHERE status = 'ready' AND ($1 IS NULL OR dealership_id = $1) GROUP BY dealership_id",
        )
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// These turns are answered now: no longer gaps.
pub async fn resolve(db: &Db, dealership_id: &str, ids: &[String]) -> Result<(), sqlx::Error> {
    for id in ids {
        on_pool!(db, |pool| {
            sqlx::query("UPDATE turns SET unanswered = FALSE WHERE id = $1 AND dealership_id = $2")
                .bind(id)
                .bind(dealership_id)
                .execute(pool)
                .await?;
        });
    }
    Ok(())
}

/// These turns were re-asked at `at` and are still not answered.
pub async fn checked(
    db: &Db,
    dealership_id: &str,
    ids: &[String],
    at: i64,
) -> Result<(), sqlx::Error> {
    for id in ids {
        on_pool!(db, |pool| {
            sqlx::query(
                "UPDATE turns SET gap_checked_at = $1 WHERE id = $2 AND dealership_id = $3",
            )
            .bind(at)
            .bind(id)
            .bind(dealership_id)
            .execute(pool)
            .await?;
        });
    }
    Ok(())
}
