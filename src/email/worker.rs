//! The outbox worker: claims due rows one at a time (a lease, so one node sends each
//! row), sends them, and records the outcome. A transient failure is retried after
//! `retry_base_secs · 2^(attempt-1)` seconds (capped at `retry_max_secs`, the upper
//! half jittered, at least what the provider asked for) until `max_attempts`, then the
//! row is `failed`; a permanent failure is `failed` at once. Rows are never deleted.
//!
//! The worker wakes when an email is queued on this node, and otherwise every
//! `poll_interval_ms` (emails queued by other nodes, retries coming due, rows left by a
//! node that stopped). Delivery is at least once: a node that dies after the provider
//! accepted an email but before it recorded that sends it again after the lease.
//!
//! A row keeps its one-time link only while it may still be sent: the outcome `sent` or
//! `failed` is recorded together with the text, link tokens redacted. Rows finished before
//! that was done are redacted at start and then hourly.

use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

use super::transport::SendError;
use super::{Mailer, REDACTED, redact_link_tokens};
use crate::db::outbox::Retained;
use crate::db::{new_id, outbox, user_tokens};

/// Extra time a send gets beyond the transport's own timeout before it is abandoned.
const SEND_GRACE: Duration = Duration::from_secs(5);
/// How often used-up link tokens are deleted, and how long after expiry.
const PURGE_EVERY_SECS: i64 = 3600;
const PURGE_AFTER_SECS: i64 = 7 * 24 * 3600;

/// The running worker. Dropping it stops the worker at its next pause.
pub struct OutboxWorker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl OutboxWorker {
    pub(super) fn start(mailer: Mailer) -> Self {
        let grace = Duration::from_secs(mailer.settings().send_timeout_secs) + SEND_GRACE;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(mailer, stopped));
        Self { stop, task, grace }
    }

    /// Stops after the email being sent, if any, is done and recorded. What is still
    /// queued stays queued for the next start (or another node).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(self.grace, &mut task).await.is_err() {
            tracing::warn!("email worker did not stop in time; its email is sent again later");
            task.abort();
        }
    }
}

async fn run(mailer: Mailer, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(mailer.settings().poll_interval_ms);
    let mut next_purge = 0;
    tracing::info!(
        transport = mailer.inner.transport.name(),
        "email worker started"
    );
    loop {
        while !*stop.borrow() {
            match deliver_next(&mailer).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "email outbox unreadable; trying again shortly");
                    break;
                }
            }
        }
        let now = mailer.now();
        if now >= next_purge {
            next_purge = now + PURGE_EVERY_SECS;
            match user_tokens::purge_expired(mailer.db(), now - PURGE_AFTER_SECS).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired link tokens deleted"),
                Err(e) => tracing::warn!(error = %e, "purging expired link tokens failed"),
            }
            match redact_finished(&mailer).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "link tokens redacted from sent emails"),
                Err(e) => tracing::warn!(error = %e, "redacting sent emails failed"),
            }
        }
        tokio::select! {
            _ = mailer.inner.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Sends the next due email, if any; `Ok(false)` when nothing is due.
async fn deliver_next(mailer: &Mailer) -> Result<bool, sqlx::Error> {
    let settings = mailer.settings();
    let db = mailer.db();
    let lease_id = new_id();
    let now = mailer.now();
    let Some(email) = outbox::claim_next(db, &lease_id, now, now + settings.lease_secs).await?
    else {
        return Ok(false);
    };
    let transport = &mailer.inner.transport;
    let timeout = Duration::from_secs(settings.send_timeout_secs) + SEND_GRACE;
    let outcome = tokio::time::timeout(timeout, transport.send(&email))
        .await
        .unwrap_or_else(|_| Err(SendError::transient("send timed out")));
    let now = mailer.now();
    let attempts = email.attempts;
    let (subject, body_text, body_html) = (
        redact_link_tokens(&email.subject),
        redact_link_tokens(&email.body_text),
        redact_link_tokens(&email.body_html),
    );
    let retained = Retained {
        subject: &subject,
        body_text: &body_text,
        body_html: &body_html,
    };
    let recorded = match outcome {
        Ok(provider_ref) => {
            mailer.inner.metrics.count("sent");
            tracing::info!(email_id = %email.id, kind = %email.kind, transport = transport.name(), attempts, "email sent");
            outbox::mark_sent(
                db,
                &email.id,
                &lease_id,
                provider_ref.as_deref(),
                retained,
                now,
            )
            .await?
        }
        Err(SendError::Transient { error, retry_after })
            if attempts < settings.max_attempts as i32 =>
        {
            let delay = backoff(settings.retry_base_secs, settings.retry_max_secs, attempts)
                .max(retry_after.unwrap_or(0).min(settings.retry_max_secs));
            mailer.inner.metrics.count("retried");
            tracing::warn!(email_id = %email.id, kind = %email.kind, attempts, retry_in_secs = delay, %error, "email not sent; will retry");
            outbox::reschedule(db, &email.id, &lease_id, now + delay, &error, now).await?
        }
        Err(e) => {
            let error = e.to_string();
            mailer.inner.metrics.count("failed");
            tracing::error!(email_id = %email.id, kind = %email.kind, attempts, %error, "email failed for good");
            outbox::mark_failed(db, &email.id, &lease_id, &error, retained, now).await?
        }
    };
    if !recorded {
        tracing::warn!(email_id = %email.id, "email lease lost before its outcome was recorded");
    }
    Ok(true)
}

/// Redacts the link tokens of rows that were sent or given up on with them (before this
/// was done when recording the outcome); returns how many rows changed.
async fn redact_finished(mailer: &Mailer) -> Result<u64, sqlx::Error> {
    const BATCH: i64 = 500;
    let mut changed = 0;
    let mut after = String::new();
    loop {
        let rows = outbox::finished_with_tokens(mailer.db(), REDACTED, &after, BATCH).await?;
        let done = (rows.len() as i64) < BATCH;
        for (id, subject, body_text, body_html) in rows {
            let redacted = (
                redact_link_tokens(&subject),
                redact_link_tokens(&body_text),
                redact_link_tokens(&body_html),
            );
            if redacted != (subject, body_text, body_html) {
                let retained = Retained {
                    subject: &redacted.0,
                    body_text: &redacted.1,
                    body_html: &redacted.2,
                };
                if outbox::retain(mailer.db(), &id, retained).await? {
                    changed += 1;
                }
            }
            after = id;
        }
        if done {
            return Ok(changed);
        }
    }
}

/// Seconds to wait after failed attempt number `attempt` (from 1): the exponential
/// delay `d`, capped, drawn from `[d/2, d]` so that many emails failing together do
/// not retry together.
fn backoff(base: i64, cap: i64, attempt: i32) -> i64 {
    let exponent = attempt.clamp(1, 31) as u32 - 1;
    let delay = base.saturating_mul(1_i64 << exponent).min(cap);
    let half = delay / 2;
    delay - half + rand::rng().random_range(0..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..200 {
            assert!((15..=30).contains(&backoff(30, 3600, 1)));
            assert!((30..=60).contains(&backoff(30, 3600, 2)));
            assert!((120..=240).contains(&backoff(30, 3600, 4)));
            assert!((1800..=3600).contains(&backoff(30, 3600, 30)));
            assert!((1..=1).contains(&backoff(1, 1, 1)));
        }
    }
}
