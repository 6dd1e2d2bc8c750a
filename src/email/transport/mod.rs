//! The ways an email leaves: [`log`] (development), [`smtp`] and [`mailgun`]. A send
//! either succeeds (with what the provider answered), fails for now (retried later), or
//! fails for good (a refusal that retrying cannot fix).

pub mod log;
pub mod mailgun;
pub mod smtp;

use std::path::PathBuf;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::{EmailSettings, TransportKind};
use crate::db::outbox::OutboxEmail;

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a network error, a timeout, a 4xx SMTP reply, HTTP 429 or 5xx.
    #[error("{error}")]
    Transient {
        /// What went wrong.
        error: String,
        /// The provider asked to wait this long, seconds.
        retry_after: Option<i64>,
    },
    /// Retrying cannot help: a 5xx SMTP reply, an HTTP 4xx, a malformed address.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    /// A transient error without a provider-given delay.
    pub fn transient(error: impl Into<String>) -> Self {
        Self::Transient {
            error: error.into(),
            retry_after: None,
        }
    }
}

/// The configured transport.
#[derive(Debug)]
pub enum Transport {
    /// Log and `.eml` files.
    Log(log::LogTransport),
    /// An SMTP relay.
    Smtp(smtp::SmtpTransport),
    /// Mailgun's HTTP API.
    Mailgun(mailgun::MailgunTransport),
}

impl Transport {
    /// The transport `settings` select; `mail_dir` is the log transport's folder and
    /// `public_host` the name this server gives in SMTP `EHLO`.
    pub fn new(
        settings: &EmailSettings,
        mail_dir: PathBuf,
        public_host: &str,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("email.from `{}`: {e}", settings.from))?;
        Ok(match settings.transport {
            TransportKind::Log => Transport::Log(log::LogTransport::new(from, mail_dir)),
            TransportKind::Smtp => {
                Transport::Smtp(smtp::SmtpTransport::new(settings, from, public_host)?)
            }
            TransportKind::Mailgun => {
                Transport::Mailgun(mailgun::MailgunTransport::new(settings, from)?)
            }
        })
    }

    /// `log`, `smtp` or `mailgun`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Log(_) => "log",
            Transport::Smtp(_) => "smtp",
            Transport::Mailgun(_) => "mailgun",
        }
    }

    /// Sends one email; `Ok` carries what the provider answered, if anything.
    pub async fn send(&self, email: &OutboxEmail) -> Result<Option<String>, SendError> {
        match self {
            Transport::Log(t) => t.send(email).await,
            Transport::Smtp(t) => t.send(email).await,
            Transport::Mailgun(t) => t.send(email).await,
        }
    }
}

/// The MIME message of an outbox row: `multipart/alternative` with the text and HTML
/// parts, and a Message-ID derived from the row id, so every retry carries the same one
/// and receivers can recognise a duplicate.
pub fn mime_message(from: &Mailbox, email: &OutboxEmail) -> Result<Message, SendError> {
    let to: Mailbox = email
        .to_addr
        .parse()
        .map_err(|e| SendError::Permanent(format!("recipient `{}`: {e}", email.to_addr)))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.as_str())
        .message_id(Some(format!("<{}@{}>", email.id, from.email.domain())));
    if let Some(reply_to) = &email.reply_to {
        match reply_to.parse::<Mailbox>() {
            Ok(mailbox) => builder = builder.reply_to(mailbox),
            Err(e) => {
                tracing::warn!(email_id = %email.id, error = %e, "Reply-To dropped: not an address")
            }
        }
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.body_text.clone(),
            email.body_html.clone(),
        ))
        .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
}
