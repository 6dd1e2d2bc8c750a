//! Conversation sessions and their turns (transcripts).

use super::{Db, Tenant, on_pool};

/// A session row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// Unique id of the session.
    pub id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// Signed-in user, or none for anonymous visitors.
    pub user_id: Option<String>,
    /// `websocket` or `webrtc`.
    pub transport: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds, when ended.
    pub ended_at: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// A turn row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Turn {
    /// Unique id of the turn.
    pub id: String,
    /// Id of the session it concerns.
    pub session_id: String,
    /// Position in the session, from 0.
    pub seq: i32,
    /// What the customer said.
    pub user_text: String,
    /// What the assistant said (up to the interruption, if any).
    pub assistant_text: String,
    /// True when barge-in cut the answer.
    pub interrupted: bool,
    /// JSON array of citations.
    pub citations: String,
    /// Voice-to-voice latency.
    pub latency_ms: Option<i64>,
    /// Unix seconds.
    pub started_at: i64,
    /// completed | cancelled | failed.
    pub status: String,
    /// JSON object of stage timings.
    pub metrics: String,
    /// The documents did not answer it (a knowledge gap until they do).
    pub unanswered: bool,
    /// JSON object of the work it cost (see `adam_actors::ports::TurnUsage`).
    pub usage: String,
}

/// Records a new session. Recording the same id again does nothing, so a write retried
/// after its answer was lost (the connection broke after the commit) is harmless.
pub async fn insert(db: &Db, session: &Session) -> Result<(), sqlx::Error> {
    let delta = super::usage::Delta {
        sessions: 1,
        ..Default::default()
    };
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let added = sqlx::query(
            "INSERT INTO sessions (id, dealership_id, user_id, transport, started_at, ended_at, end_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&session.id)
        .bind(&session.dealership_id)
        .bind(session.user_id.as_deref())
        .bind(&session.transport)
        .bind(session.started_at)
        .bind(session.ended_at)
        .bind(session.end_reason.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added == 1 {
            super::usage::add_for_session!(&session.id, session.started_at, delta)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Appends a turn; the dealership is copied from the session. A turn already recorded at
/// that position is kept (a retried write), not duplicated. Its usage is added to the
/// dealership's day in the same transaction, so it is counted once.
pub async fn insert_turn(db: &Db, turn: &Turn) -> Result<(), sqlx::Error> {
    let usage: adam_actors::ports::TurnUsage =
        serde_json::from_str(&turn.usage).unwrap_or_default();
    let delta = super::usage::Delta {
        sessions: 0,
        turns: 1,
        usage: Some(&usage),
    };
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let added = sqlx::query(
            "INSERT INTO turns (id, session_id, dealership_id, seq, user_text, assistant_text, interrupted, \
             citations, latency_ms, started_at, status, metrics, unanswered, usage) \
             SELECT $1, id, dealership_id, $2, $3, $4, $5, $6, $7, $8, $10, $11, $12, $13 FROM sessions WHERE id = $9 \
             ON CONFLICT (session_id, seq) DO NOTHING",
        )
        .bind(&turn.id)
        .bind(turn.seq)
        .bind(&turn.user_text)
        .bind(&turn.assistant_text)
        .bind(turn.interrupted)
        .bind(&turn.citations)
        .bind(turn.latency_ms)
        .bind(turn.started_at)
        .bind(&turn.session_id)
        .bind(&turn.status)
        .bind(&turn.metrics)
        .bind(turn.unanswered)
        .bind(&turn.usage)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added == 1 {
            super::usage::add_for_session!(&turn.session_id, turn.started_at, delta)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Marks a session ended; `usage` (what it used after its last turn) is added to its
/// dealership's day in the same transaction.
pub async fn end(
    db: &Db,
    id: &str,
    at: i64,
    reason: &str,
    usage: &adam_actors::ports::TurnUsage,
) -> Result<(), sqlx::Error> {
    let delta = super::usage::Delta {
        usage: Some(usage),
        ..Default::default()
    };
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 1 && !usage.is_empty() {
            super::usage::add_for_session!(id, at, delta)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Ids of one user's sessions not recorded as ended (live on some node, or left by a
/// node that died).
pub async fn unended_of_user(db: &Db, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL ORDER BY started_at",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await
    })
}

/// Sessions the tenant may see, newest first; `owner` narrows to one user's.
pub async fn list(
    db: &Db,
    tenant: Tenant<'_>,
    owner: Option<&str>,
    limit: i64,
) -> Result<Vec<Session>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Session>(
            "SELECT id, dealership_id, user_id, transport, started_at, ended_at, end_reason FROM sessions \
             WHERE ($1 IS NULL OR dealership_id = $1) AND ($2 IS NULL OR user_id = $2) \
             ORDER BY started_at DESC, id LIMIT $3",
        )
        .bind(tenant.filter())
        .bind(owner)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// One session, if visible to the tenant (and owner, when given).
pub async fn get(
    db: &Db,
    tenant: Tenant<'_>,
    owner: Option<&str>,
    id: &str,
) -> Result<Option<Session>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Session>(
            "SELECT id, dealership_id, user_id, transport, started_at, ended_at, end_reason FROM sessions \
             WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2) AND ($3 IS NULL OR user_id = $3)",
        )
        .bind(id)
        .bind(tenant.filter())
        .bind(owner)
        .fetch_optional(pool)
        .await
    })
}

/// The turns of a session, in order.
pub async fn turns(
    db: &Db,
    tenant: Tenant<'_>,
    session_id: &str,
) -> Result<Vec<Turn>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, Turn>(
            "SELECT id, session_id, seq, user_text, assistant_text, interrupted, citations, latency_ms, started_at, \
             status, metrics, unanswered, usage FROM turns WHERE session_id = $1 AND ($2 IS NULL OR dealership_id = $2) ORDER BY seq",
        )
        .bind(session_id)
        .bind(tenant.filter())
        .fetch_all(pool)
        .await
    })
}

/// Deletes a session and its transcript.
pub async fn delete(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)")
            .bind(id)
            .bind(tenant.filter())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n > 0)
}
