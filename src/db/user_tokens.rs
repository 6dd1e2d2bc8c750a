//! One-time tokens behind the links of invitation and password-reset emails. Only the
//! token's SHA-256 is stored. A token is looked up first (no write, so a bad one costs
//! nothing more), then redeemed with a conditional `UPDATE` in the same transaction that
//! sets the password, so a token works exactly once, even when two requests race with it.

use super::{Db, new_id, on_pool};

/// A stored token (its hash, never the token).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserToken {
    /// Unique id of the user token.
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

/// What looking a token up found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Not used and not expired.
    Live(UserToken),
    /// No such token.
    Unknown,
    /// Already redeemed or revoked.
    Used,
    /// Past its expiry.
    Expired,
}

/// What redeeming a live token to set its user's password did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The token is used up and the password set, together.
    Done,
    /// The token was used, revoked or expired meanwhile (another request won the race).
    Gone,
    /// Its user is gone or disabled, or their password changed after the token was issued.
    Invalid,
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

/// The token with this hash, and whether it is live. Nothing is changed: a request with a
/// bad token costs one indexed read.
pub async fn lookup(db: &Db, token_hash: &str, now: i64) -> Result<Lookup, sqlx::Error> {
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
        None => Lookup::Unknown,
        Some(t) if t.used_at.is_some() => Lookup::Used,
        Some(t) if t.expires_at <= now => Lookup::Expired,
        Some(t) => Lookup::Live(t),
    })
}

/// In one transaction: uses up `token` (still live), sets its user's password (still
/// enabled, and unchanged since the token was issued), revokes the user's other links and
/// every refresh token of theirs. Either all of it happens or none: a token is never spent
/// with the password unchanged, and works once even when two requests race with it.
pub async fn redeem_with_password(
    db: &Db,
    token: &UserToken,
    password_hash: &str,
    now: i64,
) -> Result<Redeemed, sqlx::Error> {
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE user_tokens SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&token.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            tx.rollback().await?;
            return Ok(Redeemed::Gone);
        }
        let set = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 \
             WHERE id = $3 AND disabled = FALSE AND password_changed_at <= $4",
        )
        .bind(password_hash)
        .bind(now)
        .bind(&token.user_id)
        .bind(token.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if set != 1 {
            tx.rollback().await?;
            return Ok(Redeemed::Invalid);
        }
        sqlx::query("UPDATE user_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&token.user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&token.user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Redeemed::Done)
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
