//! Deleting conversations: those past their dealership's retention, and those an erasure
//! request finds. A session's turns are deleted with it, and its lead emails by cascade
//! (`email_outbox.session_id`).
//!
//! Every statement deletes rows chosen by a condition that still holds when it runs, so
//! several nodes running retention at once each delete a row at most once, and their
//! counts add up to what was deleted.

use super::{Db, Tenant, on_pool};

/// Rows deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Sessions.
    pub sessions: u64,
    /// Turns (their transcripts).
    pub turns: u64,
    /// Lead emails quoting them.
    pub lead_emails: u64,
}

impl std::ops::AddAssign for Deleted {
    fn add_assign(&mut self, other: Self) {
        self.sessions += other.sessions;
        self.turns += other.turns;
        self.lead_emails += other.lead_emails;
    }
}

/// Deletes up to `batch` of `dealership_id`'s sessions that ended before `cutoff`, with
/// their turns. Call until it returns nothing. A session whose turns another node's pass
/// has not finished deleting waits for the next call, so each turn is counted once.
pub async fn delete_ended_before(
    db: &Db,
    dealership_id: &str,
    cutoff: i64,
    batch: i64,
) -> Result<Deleted, sqlx::Error> {
    let turns = on_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM turns WHERE session_id IN (SELECT id FROM sessions \
             WHERE dealership_id = $1 AND ended_at IS NOT NULL AND ended_at < $2 ORDER BY id LIMIT $3)",
        )
        .bind(dealership_id)
        .bind(cutoff)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    });
    let sessions = on_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s \
             WHERE s.dealership_id = $1 AND s.ended_at IS NOT NULL AND s.ended_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id) ORDER BY s.id LIMIT $3)",
        )
        .bind(dealership_id)
        .bind(cutoff)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(Deleted {
        sessions,
        turns,
        lead_emails: 0,
    })
}

/// Up to `limit` of `dealership_id`'s sessions that never ended and started before
/// `cutoff` (live ones, or ones whose node stopped without ending them), after session id
/// `after` (`""` first).
pub async fn unended_before(
    db: &Db,
    dealership_id: &str,
    cutoff: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM sessions WHERE dealership_id = $1 AND ended_at IS NULL AND started_at < $2 \
             AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(dealership_id)
        .bind(cutoff)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// Deletes one session with its turns and lead emails (counted); nothing when it is not
/// the tenant's or is already gone.
pub async fn delete_session(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<Deleted, sqlx::Error> {
    let turns = on_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM turns WHERE session_id = $1 AND ($2 IS NULL OR dealership_id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .execute(pool)
        .await?
        .rows_affected()
    });
    let lead_emails = on_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM email_outbox WHERE session_id = $1 AND ($2 IS NULL OR dealership_id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .execute(pool)
        .await?
        .rows_affected()
    });
    let sessions = on_pool!(db, |pool| {
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND ($2 IS NULL OR dealership_id = $2)")
            .bind(id)
            .bind(tenant.filter())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(Deleted {
        sessions,
        turns,
        lead_emails,
    })
}

/// A stored text that may mention a caller: a turn, or a lead email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    /// The turn's or the email's id.
    pub id: String,
    /// The conversation it belongs to (`None`: a lead email whose conversation is gone).
    pub session_id: Option<String>,
    /// The customer's words, or the email's text.
    pub text: String,
    /// The assistant's words, or the email's Reply-To.
    pub other_text: String,
}

/// What a candidate must contain, as the database can check it cheaply; each candidate is
/// then checked exactly by the caller.
#[derive(Debug, Clone, Copy)]
pub enum Filter<'a> {
    /// Both words (lowercase letters and digits) appear, in any case.
    Words(&'a str, &'a str),
    /// These digits appear once spaces and phone-number punctuation are removed.
    Digits(&'a str),
}

/// `%word%` for `LIKE`, without the characters `LIKE` gives a meaning.
fn like(word: &str) -> String {
    format!("%{}%", word.replace(['%', '_', '\\'], ""))
}

/// `text` with spaces and phone-number punctuation removed, as SQL both databases accept.
macro_rules! squeezed {
    ($text:literal) => {
        concat!(
            "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(",
            $text,
            ", ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), '+', ''), '/', '')"
        )
    };
}

/// A candidate query over turns with `$1` tenant, `$2` after-id and `condition`.
macro_rules! turns_where {
    ($($condition:tt)+) => {
        concat!(
            "SELECT id, session_id, user_text AS text, assistant_text AS other_text FROM turns \
             WHERE ($1 IS NULL OR dealership_id = $1) AND id > $2 AND ",
            $($condition)+
        )
    };
}

/// A candidate query over lead emails with `$1` tenant, `$2` after-id and `condition`.
macro_rules! leads_where {
    ($($condition:tt)+) => {
        concat!(
            "SELECT id, session_id, body_text AS text, COALESCE(reply_to, '') AS other_text \
             FROM email_outbox WHERE kind = 'lead' AND ($1 IS NULL OR dealership_id = $1) AND id > $2 AND ",
            $($condition)+
        )
    };
}

const TURNS_BY_WORDS: &str = turns_where!(
    "LOWER(user_text || ' ' || assistant_text) LIKE $3 \
     AND LOWER(user_text || ' ' || assistant_text) LIKE $4 ORDER BY id LIMIT $5"
);
const TURNS_BY_DIGITS: &str = turns_where!(
    squeezed!("(user_text || ' ' || assistant_text)"),
    " LIKE $3 ORDER BY id LIMIT $4"
);
const LEADS_BY_WORDS: &str = leads_where!(
    "LOWER(body_text || ' ' || COALESCE(reply_to, '')) LIKE $3 \
     AND LOWER(body_text || ' ' || COALESCE(reply_to, '')) LIKE $4 ORDER BY id LIMIT $5"
);
const LEADS_BY_DIGITS: &str = leads_where!(squeezed!("body_text"), " LIKE $3 ORDER BY id LIMIT $4");

/// Up to `limit` turns of the tenant that may match `filter`, after turn id `after` (the
/// last of the previous page; `""` first).
pub async fn turns_matching(
    db: &Db,
    tenant: Tenant<'_>,
    filter: Filter<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let sql = match filter {
        Filter::Words(..) => TURNS_BY_WORDS,
        Filter::Digits(_) => TURNS_BY_DIGITS,
    };
    candidates(db, sql, tenant, filter, after, limit).await
}

/// Up to `limit` lead emails of the tenant that may match `filter` (in their text or
/// Reply-To), after email id `after`.
pub async fn leads_matching(
    db: &Db,
    tenant: Tenant<'_>,
    filter: Filter<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let sql = match filter {
        Filter::Words(..) => LEADS_BY_WORDS,
        Filter::Digits(_) => LEADS_BY_DIGITS,
    };
    candidates(db, sql, tenant, filter, after, limit).await
}

async fn candidates(
    db: &Db,
    sql: &'static str,
    tenant: Tenant<'_>,
    filter: Filter<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    on_pool!(db, |pool| {
        let query = sqlx::query_as::<_, Candidate>(sql)
            .bind(tenant.filter())
            .bind(after);
        let query = match filter {
            Filter::Words(a, b) => query.bind(like(a)).bind(like(b)),
            Filter::Digits(d) => query.bind(like(d)),
        };
        query.bind(limit).fetch_all(pool).await
    })
}

/// Deletes one lead email of the tenant; true when it was there.
pub async fn delete_lead(db: &Db, tenant: Tenant<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let n = on_pool!(db, |pool| {
        sqlx::query(
            "DELETE FROM email_outbox WHERE id = $1 AND kind = 'lead' AND ($2 IS NULL OR dealership_id = $2)",
        )
        .bind(id)
        .bind(tenant.filter())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}
