//! Audit log of admin actions, readable per dealership.

use super::{Db, Tenant, new_ordered_id, on_pool};

/// One recorded action.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    /// Time-ordered id.
    pub id: String,
    /// Dealership concerned (none for platform-wide actions).
    pub dealership_id: Option<String>,
    /// Who did it (none for the CLI and bootstrap).
    pub actor_user_id: Option<String>,
    /// e.g. `user.create`.
    pub action: String,
    /// e.g. `user`.
    pub target_type: String,
    /// Id of the target.
    pub target_id: String,
    /// JSON object with what changed (never secrets).
    pub details: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Dealership concerned.
    pub dealership_id: Option<&'a str>,
    /// Who did it.
    pub actor_user_id: Option<&'a str>,
    /// Action name.
    pub action: &'a str,
    /// Target type.
    pub target_type: &'a str,
    /// Target id.
    pub target_id: &'a str,
    /// JSON details.
    pub details: serde_json::Value,
}

/// Appends an entry.
pub async fn record(db: &Db, entry: NewAuditEntry<'_>, now: i64) -> Result<(), sqlx::Error> {
    let details = entry.details.to_string();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO audit_log (id, dealership_id, actor_user_id, action, target_type, target_id, details, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_ordered_id())
        .bind(entry.dealership_id)
        .bind(entry.actor_user_id)
        .bind(entry.action)
        .bind(entry.target_type)
        .bind(entry.target_id)
        .bind(&details)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Newest entries first; `before` pages by id.
pub async fn list(
    db: &Db,
    tenant: Tenant<'_>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, AuditEntry>(
            "SELECT id, dealership_id, actor_user_id, action, target_type, target_id, details, created_at \
             FROM audit_log WHERE ($1 IS NULL OR dealership_id = $1) AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.filter())
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}
