//! The development transport: each email goes to `data_dir/mail/<outbox id>.eml`, a
//! complete MIME message any mail client opens (the "mailbox": follow links from there),
//! and to the log with its text body, link tokens redacted so that reading the log never
//! lets anyone set a password. Nothing leaves the machine.

use std::path::PathBuf;

use lettre::message::Mailbox;

use super::{SendError, mime_message};
use crate::db::outbox::OutboxEmail;
use crate::email::redact_link_tokens;

/// Writes emails to the log and to `.eml` files.
#[derive(Debug)]
pub struct LogTransport {
    from: Mailbox,
    dir: PathBuf,
}

impl LogTransport {
    /// Writes into `dir` (created when the first email is written).
    pub fn new(from: Mailbox, dir: PathBuf) -> Self {
        Self { from, dir }
    }

    /// Logs the email and writes its file; answers with the file's path.
    pub async fn send(&self, email: &OutboxEmail) -> Result<Option<String>, SendError> {
        let message = mime_message(&self.from, email)?;
        let io = |what: &str, e: std::io::Error| {
            SendError::transient(format!("{what} {}: {e}", self.dir.display()))
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io("creating", e))?;
        // Written aside, then renamed: a reader never sees half a message.
        let path = self.dir.join(format!("{}.eml", email.id));
        let partial = self.dir.join(format!(".{}.eml.partial", email.id));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(|e| io("writing into", e))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| io("renaming in", e))?;
        tracing::info!(
            email_id = %email.id,
            to = %email.to_addr,
            subject = %redact_link_tokens(&email.subject),
            file = %path.display(),
            "email (log transport, not sent; link tokens redacted, the full email is in the file):\n{}",
            redact_link_tokens(&email.body_text)
        );
        Ok(Some(path.display().to_string()))
    }
}
