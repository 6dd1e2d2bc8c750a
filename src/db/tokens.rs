//! Refresh tokens: one row per issued token, grouped in families that rotate.

use super::{Db, on_pool};

/// A refresh token row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshToken {
    /// Token id (the JWT `jti`).
    pub id: String,
    /// Family: every token rotated from one login.
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// When the login that started the family happened.
    pub login_at: i64,
    /// When this token was issued.
    pub issued_at: i64,
    /// Absolute expiry (login_at + refresh TTL).
    pub expires_at: i64,
    /// Set when it was exchanged for a new one.
    pub rotated_at: Option<i64>,
    /// Set when it (or its family) was revoked.
    pub revoked_at: Option<i64>,
}

/// Stores a freshly issued token.
pub async fn insert(db: &Db, token: &RefreshToken) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, login_at, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.family_id)
        .bind(&token.user_id)
        .bind(token.login_at)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Looks a token up by id.
pub async fn get(db: &Db, id: &str) -> Result<Option<RefreshToken>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, RefreshToken>(
            "SELECT id, family_id, user_id, login_at, issued_at, expires_at, rotated_at, revoked_at \
             FROM refresh_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Marks a live token as rotated. Exactly one caller wins for a given token: the
/// update only matches while it is neither rotated nor revoked.
pub async fn mark_rotated(db: &Db, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 \
             WHERE id = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Revokes every token of a family (reuse detected, or logout).
pub async fn revoke_family(db: &Db, family_id: &str, now: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        Ok(sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(pool)
        .await?
        .rows_affected())
    })
}

/// Revokes every token of a user (password change, disable).
pub async fn revoke_user(db: &Db, user_id: &str, now: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        Ok(sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected())
    })
}

/// Deletes rows that expired before `cutoff` (housekeeping).
pub async fn purge_expired(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        Ok(
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected(),
        )
    })
}
