//! Dealership API keys: named, scoped, revocable server credentials. The key itself is
//! shown once; only its SHA-256 is stored (a key is 238 random bits, so a fast hash is
//! as good as a slow one and keeps every authenticated request cheap).

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use super::{Db, Tenant, new_id, on_pool};

/// What every Adam API key starts with, so a leaked one is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "adam_sk_";
/// Characters of the key kept in clear to tell keys apart in listings.
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 6;

/// An API key row (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    /// Id.
    pub id: String,
    /// Dealership it acts for.
    pub dealership_id: String,
    /// Name given by its creator.
    pub name: String,
    /// The key's first characters (`adam_sk_AbC123`).
    pub prefix: String,
    /// Comma-separated scopes (`realtime`, `management`).
    pub scopes: String,
    /// The user who created it (none once that user is deleted).
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last authenticated use (minute resolution).
    pub last_used_at: Option<i64>,
    /// Unix seconds; set when revoked.
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    /// Whether the key carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split(',').any(|s| s == scope)
    }
}

/// A new key: 40 random alphanumerics (≈238 bits) behind [`KEY_PREFIX`].
pub fn generate() -> String {
    let body: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("{KEY_PREFIX}{body}")
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The columns of [`ApiKey`], for `concat!` (sqlx takes only static SQL).
macro_rules! columns {
    () => {
        "id, dealership_id, name, prefix, scopes, created_by, created_at, last_used_at, revoked_at"
    };
}

/// Stores a new key for `dealership_id`; returns its row.
pub async fn insert(
    db: &Db,
    dealership_id: &str,
    name: &str,
    key: &str,
    scopes: &[&str],
    created_by: &str,
    now: i64,
) -> Result<ApiKey, sqlx::Error> {
    let row = ApiKey {
        id: new_id(),
        dealership_id: dealership_id.to_owned(),
        name: name.to_owned(),
        prefix: key.chars().take(SHOWN_CHARS).collect(),
        scopes: scopes.join(","),
        created_by: Some(created_by.to_owned()),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO api_keys (id, dealership_id, name, prefix, key_hash, scopes, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.dealership_id)
        .bind(&row.name)
        .bind(&row.prefix)
        .bind(hash(key))
        .bind(&row.scopes)
        .bind(created_by)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(row)
}

/// The dealership's keys that are not revoked, newest first.
pub async fn list_active(
    db: &Db,
    tenant: Tenant<'_>,
    dealership_id: &str,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, ApiKey>(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE dealership_id = $1 \
             AND ($2 IS NULL OR dealership_id = $2) AND revoked_at IS NULL \
             ORDER BY created_at DESC, id"
        ))
        .bind(dealership_id)
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// Revokes one key of the dealership; false when there is no such active key.
pub async fn revoke(
    db: &Db,
    tenant: Tenant<'_>,
    dealership_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND dealership_id = $3 \
             AND ($4 IS NULL OR dealership_id = $4) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(dealership_id)
        .bind(tenant.filter())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

/// The active key `key` is, if any, after noting its use (at most once a minute, so a
/// busy key does not write on every request).
pub async fn authenticate(db: &Db, key: &str, now: i64) -> Result<Option<ApiKey>, sqlx::Error> {
    if !key.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let found = on_pool!(db, |pool| {
        sqlx::query_as::<_, ApiKey>(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash(key))
        .fetch_optional(pool)
        .await?
    });
    let Some(mut found) = found else {
        return Ok(None);
    };
    if found.last_used_at.is_none_or(|t| t <= now - 60) {
        on_pool!(db, |pool| {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&found.id)
                .execute(pool)
                .await?;
        });
        found.last_used_at = Some(now);
    }
    Ok(Some(found))
}

/// Active keys of a dealership (the per-dealership cap).
pub async fn count_active(db: &Db, dealership_id: &str) -> Result<i64, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM api_keys WHERE dealership_id = $1 AND revoked_at IS NULL",
        )
        .bind(dealership_id)
        .fetch_one(pool)
        .await
    })
}
