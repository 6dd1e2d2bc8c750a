//! SMTP submission through a relay (lettre, tokio, native-tls), one connection per
//! email. STARTTLS is `required` (no TLS, no send), `opportunistic` or `none`. A 4xx
//! reply and any network or TLS failure are retried; a 5xx reply is final.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{SendError, mime_message};
use crate::db::outbox::OutboxEmail;
use crate::email::{EmailSettings, StartTls};

/// Sends through the configured relay.
pub struct SmtpTransport {
    from: Mailbox,
    relay: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `[email.smtp]`; greets the relay as `public_host`.
    pub fn new(settings: &EmailSettings, from: Mailbox, public_host: &str) -> anyhow::Result<Self> {
        let smtp = &settings.smtp;
        let host = smtp.host.trim();
        let tls = match smtp.starttls {
            StartTls::None => Tls::None,
            StartTls::Opportunistic => Tls::Opportunistic(
                TlsParameters::new(host.to_owned()).context("setting up TLS for SMTP")?,
            ),
            StartTls::Required => Tls::Required(
                TlsParameters::new(host.to_owned()).context("setting up TLS for SMTP")?,
            ),
        };
        let hello = match public_host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
            Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
            Err(_) => ClientId::Domain(public_host.to_owned()),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(smtp.port)
            .tls(tls)
            .hello_name(hello)
            .timeout(Some(Duration::from_secs(settings.send_timeout_secs)));
        if let Some(username) = &smtp.username {
            let password = smtp
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Self {
            from,
            relay: builder.build(),
        })
    }

    /// Submits one email; answers with the relay's reply (e.g. `2.0.0 Ok: queued as …`).
    pub async fn send(&self, email: &OutboxEmail) -> Result<Option<String>, SendError> {
        let message = mime_message(&self.from, email)?;
        match self.relay.send(message).await {
            Ok(response) => Ok(Some(response.message().collect::<Vec<_>>().join(" "))),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
            Err(e) => Err(SendError::transient(format!("smtp: {e}"))),
        }
    }
}
