//! The email outbox: every email is a row before it is sent, and stays one afterwards
//! (`sent` or `failed`), except a lead email, which goes with the conversation it quotes
//! (`session_id`, deleted by cascade) or with an erasure request that names its contact.
//!
//! A row is claimed by one sender at a time with a conditional `UPDATE` that only matches
//! while the row is `queued` and due, and that moves `next_attempt_at` to the end of the
//! sender's lease: a sender that dies mid-send leaves a row that becomes due again when
//! the lease ends. The outcome is written only by the holder of the lease (`lease_id`),
//! together with the row's [`Retained`] text: once sent or given up on, a row keeps no
//! usable one-time link.

use super::{Db, new_ordered_id, on_pool};

/// Row status: waiting (or being sent under a lease).
pub const QUEUED: &str = "queued";
/// Row status: the transport accepted it.
pub const SENT: &str = "sent";
/// Row status: given up (a permanent refusal, or every attempt failed).
pub const FAILED: &str = "failed";

/// An outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEmail {
    /// Unique id of the outbox email.
    pub id: String,
    /// `invite`, `password_reset` or `lead`.
    pub kind: String,
    /// Dealership concerned, if any.
    pub dealership_id: Option<String>,
    /// Recipient address.
    pub to_addr: String,
    /// Reply-To address, if any.
    pub reply_to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Send attempts started so far.
    pub attempts: i32,
    /// When it is due (unix seconds); while claimed, the end of the lease.
    pub next_attempt_at: i64,
    /// The claim of the sender working on it.
    pub lease_id: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// What the transport answered (Mailgun's message id, the SMTP server's reply).
    pub provider_ref: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds, once sent.
    pub sent_at: Option<i64>,
    /// The conversation a lead email is about.
    pub session_id: Option<String>,
}

/// A rendered email to queue.
#[derive(Debug, Clone)]
pub struct NewEmail {
    /// `invite`, `password_reset` or `lead`.
    pub kind: &'static str,
    /// Dealership concerned, if any.
    pub dealership_id: Option<String>,
    /// Recipient.
    pub to_addr: String,
    /// Reply-To, if any.
    pub reply_to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: String,
    /// The conversation it quotes (lead emails): deleting it deletes the email.
    pub session_id: Option<String>,
}

/// The subject and bodies a row keeps once it is sent or given up on (the worker passes
/// them with link tokens redacted).
#[derive(Debug, Clone, Copy)]
pub struct Retained<'a> {
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub body_text: &'a str,
    /// HTML body.
    pub body_html: &'a str,
}

/// `SELECT <all outbox columns> FROM email_outbox <rest>` as a static string.
macro_rules! outbox_columns {
    () => {
        "id, kind, dealership_id, to_addr, reply_to, subject, body_text, body_html, status, \
         attempts, next_attempt_at, lease_id, last_error, provider_ref, created_at, updated_at, sent_at, session_id"
    };
}

/// Queues an email, due at once; returns its (time-ordered) id.
pub async fn insert(db: &Db, email: &NewEmail, now: i64) -> Result<String, sqlx::Error> {
    let id = new_ordered_id();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO email_outbox (id, kind, dealership_id, to_addr, reply_to, subject, body_text, \
             body_html, status, attempts, next_attempt_at, created_at, updated_at, session_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9, $9, $10)",
        )
        .bind(&id)
        .bind(email.kind)
        .bind(email.dealership_id.as_deref())
        .bind(&email.to_addr)
        .bind(email.reply_to.as_deref())
        .bind(&email.subject)
        .bind(&email.body_text)
        .bind(&email.body_html)
        .bind(now)
        .bind(email.session_id.as_deref())
        .execute(pool)
        .await?;
    });
    Ok(id)
}

/// Emails of `kind` queued for `dealership_id` after `since` (unix seconds), whatever
/// became of them: what a per-dealership throttle counts.
pub async fn count_since(
    db: &Db,
    kind: &str,
    dealership_id: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    let n: i64 = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM email_outbox WHERE dealership_id = $1 AND kind = $2 \
             AND created_at > $3",
        )
        .bind(dealership_id)
        .bind(kind)
        .bind(since)
        .fetch_one(pool)
        .await?
    });
    Ok(n)
}

/// Claims the next due row for `lease_id` until `lease_until`, counting an attempt.
/// `None` when nothing is due. Of several senders racing for a row exactly one gets it;
/// the others move on to the next.
pub async fn claim_next(
    db: &Db,
    lease_id: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<OutboxEmail>, sqlx::Error> {
    const CANDIDATES: i64 = 8;
    let due: Vec<String> = on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM email_outbox WHERE status = 'queued' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at, id LIMIT $2",
        )
        .bind(now)
        .bind(CANDIDATES)
        .fetch_all(pool)
        .await?
    });
    for id in due {
        let claimed = on_pool!(db, |pool| {
            sqlx::query_as::<_, OutboxEmail>(concat!(
                "UPDATE email_outbox SET attempts = attempts + 1, lease_id = $1, next_attempt_at = $2, \
                 updated_at = $3 WHERE id = $4 AND status = 'queued' AND next_attempt_at <= $3 RETURNING ",
                outbox_columns!()
            ))
            .bind(lease_id)
            .bind(lease_until)
            .bind(now)
            .bind(&id)
            .fetch_optional(pool)
            .await?
        });
        if claimed.is_some() {
            return Ok(claimed);
        }
    }
    Ok(None)
}

/// Records a successful send, keeping `retained` as the row's text; false when the lease
/// was lost meanwhile.
pub async fn mark_sent(
    db: &Db,
    id: &str,
    lease_id: &str,
    provider_ref: Option<&str>,
    retained: Retained<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE email_outbox SET status = 'sent', sent_at = $1, updated_at = $1, provider_ref = $2, \
             lease_id = NULL, subject = $5, body_text = $6, body_html = $7 \
             WHERE id = $3 AND lease_id = $4 AND status = 'queued'",
        )
        .bind(now)
        .bind(provider_ref)
        .bind(id)
        .bind(lease_id)
        .bind(retained.subject)
        .bind(retained.body_text)
        .bind(retained.body_html)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Puts a row back in the queue, due at `next_attempt_at`, keeping the error.
pub async fn reschedule(
    db: &Db,
    id: &str,
    lease_id: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE email_outbox SET next_attempt_at = $1, last_error = $2, updated_at = $3, lease_id = NULL \
             WHERE id = $4 AND lease_id = $5 AND status = 'queued'",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(lease_id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Gives up on a row, keeping the error and `retained` as its text.
pub async fn mark_failed(
    db: &Db,
    id: &str,
    lease_id: &str,
    error: &str,
    retained: Retained<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE email_outbox SET status = 'failed', last_error = $1, updated_at = $2, lease_id = NULL, \
             subject = $5, body_text = $6, body_html = $7 \
             WHERE id = $3 AND lease_id = $4 AND status = 'queued'",
        )
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(lease_id)
        .bind(retained.subject)
        .bind(retained.body_text)
        .bind(retained.body_html)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Rows sent or given up on whose text may still hold a `token=` value (rows finished
/// before their text was redacted when done), ids after `after`, at most `limit`, in id
/// order: id, subject and bodies.
pub async fn finished_with_tokens(
    db: &Db,
    marker: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    // `[` and `]` are literal in LIKE on both databases; `%` and `_` are not in the marker.
    let redacted = format!("%token={marker}%");
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, String, String, String)>(
            "SELECT id, subject, body_text, body_html FROM email_outbox \
             WHERE status IN ('sent', 'failed') \
             AND ((body_text LIKE '%token=%' AND body_text NOT LIKE $1) \
               OR (body_html LIKE '%token=%' AND body_html NOT LIKE $1)) \
             AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(&redacted)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Replaces a finished row's text with `retained` (see [`finished_with_tokens`]).
pub async fn retain(db: &Db, id: &str, retained: Retained<'_>) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE email_outbox SET subject = $1, body_text = $2, body_html = $3 \
             WHERE id = $4 AND status IN ('sent', 'failed')",
        )
        .bind(retained.subject)
        .bind(retained.body_text)
        .bind(retained.body_html)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// One row by id (operators and tests).
pub async fn get(db: &Db, id: &str) -> Result<Option<OutboxEmail>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, OutboxEmail>(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM email_outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Every row, oldest first (operators and tests).
pub async fn list(db: &Db) -> Result<Vec<OutboxEmail>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, OutboxEmail>(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM email_outbox ORDER BY created_at, id"
        ))
        .fetch_all(pool)
        .await
    })
}
