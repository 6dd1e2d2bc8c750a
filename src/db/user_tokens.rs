//! One-time tokens behind the links of invitation and password-reset emails. Only the
//! token's SHA-256 is stored; redeeming one is a conditional `UPDATE`, so a token works
//! exactly once, even when two requests race with it.

use super::{Db, new_id, on_pool};

/// A stored token (its hash, never the token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserToken {
    /// Id.
    pub id: String,
    /// Whose password the link sets.
    pub user_id: String,
    /// `invite` or `password_reset`.
    pub purpose: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; refused from then on.
    pub expires_at: i64,
    /// Set when redeemed or revoked.
    pub used_at: Option<i64>,
}

/// What redeeming a token found.
#[derive(Debug, Clone)]
pub enum Redeemed {
    /// It was live and is now used up.
    Ok(UserToken),
    /// No such token.
    Unknown,
    /// Already redeemed or revoked.
    Used,
    /// Past its expiry.
    Expired,
}

/// Stores a new token's hash.
pub async fn insert(
    db: &Db,
    user_id: &str,
    purpose: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<UserToken, sqlx::Error> {
    let id = new_id();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO user_tokens (id, user_id, purpose, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(purpose)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?;
    });
    Ok(UserToken {
        id,
        user_id: user_id.to_owned(),
        purpose: purpose.to_owned(),
        created_at: now,
        expires_at,
        used_at: None,
    })
}

/// Uses up the token with this hash if it is live; otherwise says why not.
pub async fn redeem(db: &Db, token_hash: &str, now: i64) -> Result<Redeemed, sqlx::Error> {
    let used = on_pool!(db, |pool| {
        sqlx::query_as::<_, UserToken>(
            "UPDATE user_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING id, user_id, purpose, created_at, expires_at, used_at",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?
    });
    if let Some(token) = used {
        return Ok(Redeemed::Ok(token));
    }
    let stored = on_pool!(db, |pool| {
        sqlx::query_as::<_, UserToken>(
            "SELECT id, user_id, purpose, created_at, expires_at, used_at \
             FROM user_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?
    });
    Ok(match stored {
        None => Redeemed::Unknown,
        Some(t) if t.used_at.is_some() => Redeemed::Used,
        Some(_) => Redeemed::Expired,
    })
}

/// Revokes every live token of a user (their password was just set).
pub async fn revoke_user(db: &Db, user_id: &str, now: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        Ok(sqlx::query(
            "UPDATE user_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected())
    })
}

/// Deletes tokens that expired before `cutoff` (housekeeping).
pub async fn purge_expired(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    on_pool!(db, |pool| {
        Ok(sqlx::query("DELETE FROM user_tokens WHERE expires_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected())
    })
}
