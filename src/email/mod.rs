//! Outgoing email. Every email is an `email_outbox` row before anything is sent; the
//! [`worker`] sends due rows through the configured transport, retries failures with
//! exponential backoff and jitter, and never deletes a row.
//!
//! - [`Mailer`]: renders and queues emails (in [`crate::state::AppState`]).
//! - [`templates`]: minijinja templates, HTML autoescaped, each with a plain-text twin.
//! - [`transport`]: `log` (development: the log and `.eml` files), SMTP, Mailgun.
//! - [`worker`]: claims due rows (one node per row), sends, records the outcome.
//! - [`account`]: invitation and password-reset emails with one-time links.
//! - [`lead`]: conversation summaries sent to a dealership's lead address.
//! - [`throttle`]: per-recipient limits on self-service emails.

pub mod account;
pub mod lead;
pub mod templates;
pub mod throttle;
pub mod transport;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use prometheus::{IntCounterVec, Opts, Registry};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::db::Db;
use crate::db::outbox::{self, NewEmail};

/// `[email]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// How emails leave: `log` (development), `smtp` or `mailgun`.
    pub transport: TransportKind,
    /// The `From` of every email, e.g. `Adam <no-reply@example.com>`.
    pub from: String,
    /// Lifetime of an invitation link, seconds.
    pub invite_ttl_secs: i64,
    /// Lifetime of a password-reset link, seconds.
    pub reset_ttl_secs: i64,
    /// Password-reset requests per email address per `reset_window_secs` (more: 429).
    pub reset_max_per_email: u32,
    /// See `reset_max_per_email`.
    pub reset_window_secs: i64,
    /// Lead emails per dealership per rolling hour (more are logged and counted, not sent).
    pub lead_max_per_hour: u32,
    /// Attempts before an email is marked `failed`.
    pub max_attempts: u32,
    /// Delay before the first retry, seconds; doubles with each attempt (with jitter).
    pub retry_base_secs: i64,
    /// Longest delay between two attempts, seconds.
    pub retry_max_secs: i64,
    /// Longest time one send may take (connection, TLS, upload), seconds.
    pub send_timeout_secs: u64,
    /// How long a claimed email stays reserved to the node sending it, seconds; a node
    /// that dies mid-send leaves it to another after this.
    pub lease_secs: i64,
    /// How often the worker looks for due emails when nothing wakes it, ms.
    pub poll_interval_ms: u64,
    /// The SMTP relay (`transport = "smtp"`).
    pub smtp: SmtpSettings,
    /// Mailgun (`transport = "mailgun"`).
    pub mailgun: MailgunSettings,
    /// Let `environment = "production"` start with `transport = "log"` (emails written to
    /// the log, link tokens redacted, and to `data_dir/mail`, but never sent). Off: refused.
    pub allow_log_transport_in_production: bool,
}

/// Which transport sends email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Writes each email to the log (link tokens redacted) and to `data_dir/mail/<id>.eml`.
    Log,
    /// An SMTP relay.
    Smtp,
    /// Mailgun's HTTP API.
    Mailgun,
}

/// `[email.smtp]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Relay host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Relay port (587: submission with STARTTLS; 25: relay).
    pub port: u16,
    /// `required` (refuse to send without STARTTLS), `opportunistic` (upgrade when
    /// offered) or `none` (plain text; only for a relay on a trusted network).
    pub starttls: StartTls,
    /// Login, if the relay wants one (the password from [`SmtpSettings::PASSWORD_ENV`]).
    pub username: Option<String>,
    /// Password; from [`SmtpSettings::PASSWORD_ENV`] only.
    #[serde(skip)]
    pub password: Option<SecretString>,
}

impl SmtpSettings {
    /// The environment variable the SMTP password comes from.
    pub const PASSWORD_ENV: &'static str = "ADAM__EMAIL__SMTP__PASSWORD";
}

/// STARTTLS policy of the SMTP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Upgrade with STARTTLS or fail.
    Required,
    /// Upgrade with STARTTLS when the relay offers it.
    Opportunistic,
    /// Never upgrade.
    None,
}

/// `[email.mailgun]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailgunSettings {
    /// The sending domain, e.g. `mg.example.com`.
    pub domain: String,
    /// `us` (`https://api.mailgun.net`) or `eu` (`https://api.eu.mailgun.net`).
    pub region: MailgunRegion,
    /// Another API base URL instead of the region's (a proxy, or a local fake in tests).
    pub base_url: String,
    /// API key; from [`MailgunSettings::API_KEY_ENV`] only.
    #[serde(skip)]
    pub api_key: Option<SecretString>,
}

impl MailgunSettings {
    /// The environment variable the API key comes from.
    pub const API_KEY_ENV: &'static str = "ADAM__EMAIL__MAILGUN__API_KEY";

    /// The API base URL in use.
    pub fn api_base(&self) -> &str {
        if !self.base_url.is_empty() {
            return self.base_url.trim_end_matches('/');
        }
        match self.region {
            MailgunRegion::Us => "https://api.mailgun.net",
            MailgunRegion::Eu => "https://api.eu.mailgun.net",
        }
    }
}

/// Mailgun region (accounts and domains live in one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailgunRegion {
    /// United States.
    Us,
    /// European Union.
    Eu,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            transport: TransportKind::Log,
            from: "Adam <no-reply@adam.local>".into(),
            invite_ttl_secs: 72 * 3600,
            reset_ttl_secs: 3600,
            reset_max_per_email: 3,
            reset_window_secs: 3600,
            lead_max_per_hour: 30,
            max_attempts: 8,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            send_timeout_secs: 30,
            lease_secs: 300,
            poll_interval_ms: 1000,
            smtp: SmtpSettings::default(),
            mailgun: MailgunSettings::default(),
            allow_log_transport_in_production: false,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            starttls: StartTls::Required,
            username: None,
            password: None,
        }
    }
}

impl Default for MailgunSettings {
    fn default() -> Self {
        Self {
            domain: String::new(),
            region: MailgunRegion::Us,
            base_url: String::new(),
            api_key: None,
        }
    }
}

impl EmailSettings {
    /// Checks values that parse but cannot work: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let fail = |key, problem: &str| Err((key, problem.to_owned()));
        if self.from.parse::<Mailbox>().is_err() {
            return Err((
                "email.from",
                format!(
                    "`{}` is not an address like `Adam <no-reply@example.com>`",
                    self.from
                ),
            ));
        }
        if self.invite_ttl_secs < 60 || self.reset_ttl_secs < 60 {
            return fail(
                "email.invite_ttl_secs",
                "invite_ttl_secs and reset_ttl_secs must be at least 60",
            );
        }
        if self.reset_max_per_email == 0 || self.reset_window_secs < 1 {
            return fail(
                "email.reset_max_per_email",
                "must be at least 1 (and reset_window_secs at least 1)",
            );
        }
        if self.lead_max_per_hour == 0 {
            return fail(
                "email.lead_max_per_hour",
                "must be at least 1 (to stop lead emails, clear the dealership's lead_email)",
            );
        }
        if !(1..=100).contains(&self.max_attempts) {
            return fail("email.max_attempts", "must be 1 to 100");
        }
        if self.retry_base_secs < 1 || self.retry_max_secs < self.retry_base_secs {
            return fail(
                "email.retry_base_secs",
                "must be at least 1 and at most retry_max_secs",
            );
        }
        if !(1..=600).contains(&self.send_timeout_secs) {
            return fail("email.send_timeout_secs", "must be 1 to 600");
        }
        if self.lease_secs <= self.send_timeout_secs as i64 {
            return fail("email.lease_secs", "must be longer than send_timeout_secs");
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return fail("email.poll_interval_ms", "must be 10 to 60000");
        }
        match self.transport {
            TransportKind::Log => {}
            TransportKind::Smtp => {
                if self.smtp.host.trim().is_empty() {
                    return fail("email.smtp.host", "is required when transport is smtp");
                }
                if self.smtp.username.is_some() && self.smtp.password.is_none() {
                    return fail(
                        "email.smtp.username",
                        "needs a password in ADAM__EMAIL__SMTP__PASSWORD",
                    );
                }
            }
            TransportKind::Mailgun => {
                let domain = &self.mailgun.domain;
                if domain.is_empty() || domain.contains('/') || domain.contains(char::is_whitespace)
                {
                    return fail(
                        "email.mailgun.domain",
                        "must be the sending domain, e.g. mg.example.com",
                    );
                }
                if self.mailgun.api_key.is_none() {
                    return fail(
                        "email.mailgun.api_key",
                        "is required when transport is mailgun: set ADAM__EMAIL__MAILGUN__API_KEY",
                    );
                }
                transport::mailgun::check_base_url(self.mailgun.api_base())
                    .or_else(|problem| fail("email.mailgun.base_url", &problem))?;
            }
        }
        Ok(())
    }
}

/// Why an email could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A template failed to render (a bug in a template).
    #[error("rendering email template `{name}`")]
    Template {
        /// Template name.
        name: String,
        /// The engine's error.
        #[source]
        source: minijinja::Error,
    },
    /// The database refused the row.
    #[error("queueing email")]
    Database(#[from] sqlx::Error),
    /// The dealership (or its session) does not exist.
    #[error("no such dealership or session")]
    NotFound,
}

/// `adam_emails_total{outcome}` and `adam_lead_emails_total{outcome}`.
#[derive(Clone, Debug)]
struct EmailMetrics {
    emails: IntCounterVec,
    leads: IntCounterVec,
}

impl EmailMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let emails = IntCounterVec::new(
            Opts::new(
                "emails_total",
                "Emails by outcome: queued, sent, retried (a failed attempt to be retried), failed",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(emails.clone()))?;
        let leads = IntCounterVec::new(
            Opts::new(
                "lead_emails_total",
                "Leads detected, by what became of their email: queued, throttled (over \
                 email.lead_max_per_hour for the dealership), no_address (no lead_email)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(leads.clone()))?;
        Ok(Self { emails, leads })
    }

    fn count(&self, outcome: &str) {
        self.emails.with_label_values(&[outcome]).inc();
    }
}

/// Renders and queues emails, and owns what the outbox worker needs. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    clock: Clock,
    settings: EmailSettings,
    public_url: String,
    templates: templates::Templates,
    transport: transport::Transport,
    reset_throttle: throttle::RecipientThrottle,
    wake: Notify,
    metrics: EmailMetrics,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.inner.settings.transport)
            .finish_non_exhaustive()
    }
}

/// What email needs to know of the node beyond `[email]`.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// `data_dir`: the log transport writes under `mail/` there.
    pub data_dir: &'a std::path::Path,
    /// `http.public_url`: links in emails point there.
    pub public_url: &'a str,
    /// The node runs in `production`.
    pub production: bool,
}

impl<'a> Site<'a> {
    /// The node's site as `settings` describe it.
    pub fn of(settings: &'a crate::settings::Settings) -> Self {
        Self {
            data_dir: &settings.data_dir,
            public_url: &settings.http.public_url,
            production: settings.environment == crate::settings::Environment::Production,
        }
    }
}

impl Mailer {
    /// Compiles the templates, sets up the configured transport and registers the
    /// metrics. Sends nothing until [`Mailer::start_worker`].
    pub fn new(
        email: &EmailSettings,
        site: &Site<'_>,
        db: Db,
        clock: Clock,
        registry: &Registry,
    ) -> anyhow::Result<Self> {
        let email = email.clone();
        let templates = templates::Templates::new().context("compiling email templates")?;
        let mail_dir: PathBuf = site.data_dir.join("mail");
        let public_host = public_host(site.public_url);
        let transport = transport::Transport::new(&email, mail_dir, &public_host)
            .context("setting up the email transport")?;
        if email.transport == TransportKind::Log && site.production {
            // Only reached with email.allow_log_transport_in_production (see validation).
            tracing::warn!(
                "email.transport is `log`: emails are written to the log (link tokens redacted) and data_dir/mail, not sent"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                reset_throttle: throttle::RecipientThrottle::new(
                    email.reset_max_per_email,
                    email.reset_window_secs,
                    clock.clone(),
                ),
                metrics: EmailMetrics::new(registry).context("registering email metrics")?,
                public_url: site.public_url.trim_end_matches('/').to_owned(),
                db,
                clock,
                templates,
                transport,
                wake: Notify::new(),
                settings: email,
            }),
        })
    }

    /// The email settings.
    pub fn settings(&self) -> &EmailSettings {
        &self.inner.settings
    }

    /// `http.public_url` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.public_url)
    }

    /// Renders template set `name` with `context` and queues it for `to`; returns the
    /// outbox id. The worker is woken at once.
    pub async fn queue(
        &self,
        name: &'static str,
        context: minijinja::Value,
        to: &str,
        reply_to: Option<&str>,
        dealership_id: Option<&str>,
    ) -> Result<String, EmailError> {
        self.queue_row(name, context, to, reply_to, dealership_id, None)
            .await
    }

    /// As [`Mailer::queue`], for an email that quotes conversation `session_id`: deleting
    /// the conversation deletes the email.
    pub async fn queue_about_session(
        &self,
        name: &'static str,
        context: minijinja::Value,
        to: &str,
        reply_to: Option<&str>,
        dealership_id: &str,
        session_id: &str,
    ) -> Result<String, EmailError> {
        self.queue_row(
            name,
            context,
            to,
            reply_to,
            Some(dealership_id),
            Some(session_id),
        )
        .await
    }

    async fn queue_row(
        &self,
        name: &'static str,
        context: minijinja::Value,
        to: &str,
        reply_to: Option<&str>,
        dealership_id: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<String, EmailError> {
        let rendered = self.inner.templates.render(name, &context)?;
        let email = NewEmail {
            kind: name,
            dealership_id: dealership_id.map(str::to_owned),
            to_addr: to.to_owned(),
            reply_to: reply_to.map(str::to_owned),
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: rendered.html,
            session_id: session_id.map(str::to_owned),
        };
        let id = outbox::insert(&self.inner.db, &email, self.inner.clock.now()).await?;
        self.inner.metrics.count("queued");
        tracing::info!(email_id = %id, kind = name, "email queued");
        self.inner.wake.notify_one();
        Ok(id)
    }

    /// Counts a password-reset request for `email`; `Err(seconds)` when that address
    /// has had its share for now.
    pub fn throttle_reset(&self, email: &str) -> Result<(), i64> {
        self.inner.reset_throttle.check(email)
    }

    /// Counts a lead by what became of its email (`adam_lead_emails_total`).
    pub(crate) fn count_lead(&self, outcome: &str) {
        self.inner.metrics.leads.with_label_values(&[outcome]).inc();
    }

    /// Starts the outbox worker; stop it with [`worker::OutboxWorker::stop`].
    pub fn start_worker(&self) -> worker::OutboxWorker {
        worker::OutboxWorker::start(self.clone())
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn now(&self) -> i64 {
        self.inner.clock.now()
    }
}

/// What replaces a link's token in logs and in sent outbox rows.
pub const REDACTED: &str = "[redacted]";

/// `text` with the value of every `token=` (a one-time link's token, in a URL's query or
/// fragment) replaced by [`REDACTED`]: what may be logged or kept once an email is sent.
/// Applying it again changes nothing.
pub fn redact_link_tokens(text: &str) -> String {
    const KEY: &str = "token=";
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '%';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let end = after.find(|c| !is_token_char(c)).unwrap_or(after.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The host of the public URL (`adam.example.com`), for SMTP `EHLO` and Message-IDs.
fn public_host(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        "localhost".into()
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn link_tokens_are_redacted_wherever_they_appear() {
        let text = "Open http://a.test/admin/#/set-password?token=Jx0t-a_9Z&for=reset now";
        assert_eq!(
            redact_link_tokens(text),
            "Open http://a.test/admin/#/set-password?token=[redacted]&for=reset now"
        );
        let html =
            r#"<a href="https:&#x2f;&#x2f;a.test?token=abc-DEF_1&amp;for=invite">x</a> token=Q"#;
        let redacted = redact_link_tokens(html);
        assert_eq!(
            redacted,
            r#"<a href="https:&#x2f;&#x2f;a.test?token=[redacted]&amp;for=invite">x</a> token=[redacted]"#
        );
        assert_eq!(redact_link_tokens(&redacted), redacted, "idempotent");
        assert_eq!(
            redact_link_tokens("no link, token= empty"),
            "no link, token= empty"
        );
        assert_eq!(
            redact_link_tokens("ünïcode token=ab€"),
            "ünïcode token=[redacted]€"
        );
    }

    #[test]
    fn public_host_strips_scheme_port_and_path() {
        assert_eq!(
            public_host("https://adam.example.com/app"),
            "adam.example.com"
        );
        assert_eq!(public_host("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(public_host("http://[::1]:8080/"), "::1");
        assert_eq!(public_host(""), "localhost");
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        EmailSettings::default().validate().expect("defaults");
        let mut s = EmailSettings {
            from: "not an address".into(),
            ..EmailSettings::default()
        };
        assert_eq!(s.validate().expect_err("bad from").0, "email.from");
        s.from = "Adam <a@b.test>".into();
        s.transport = TransportKind::Mailgun;
        s.mailgun.domain = "mg.example.com".into();
        assert_eq!(s.validate().expect_err("no key").0, "email.mailgun.api_key");
        s.mailgun.api_key = Some(SecretString::from("key-1"));
        s.validate().expect("mailgun with a key");
        s.mailgun.base_url = "http://mailgun.example.com".into();
        assert_eq!(
            s.validate().expect_err("plain http off loopback").0,
            "email.mailgun.base_url"
        );
        s.transport = TransportKind::Smtp;
        assert_eq!(s.validate().expect_err("no host").0, "email.smtp.host");
        s.lease_secs = 10;
        s.smtp.host = "smtp.example.com".into();
        assert_eq!(s.validate().expect_err("short lease").0, "email.lease_secs");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn secrets_come_verbatim_from_the_environment_only() {
        use secrecy::ExposeSecret;
        use std::path::Path;

        use crate::settings::CliOverrides;

        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "adam.toml",
                "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"smtp.example.com\"\nusername = \"adam\"\n",
            )?;
            let err = Settings::load(Path::new("adam.toml"), &CliOverrides::default())
                .expect_err("a username without a password");
            assert!(err.to_string().contains("email.smtp.username"), "{err}");

            jail.set_env(SmtpSettings::PASSWORD_ENV, "00012345");
            jail.set_env(MailgunSettings::API_KEY_ENV, "key-0042");
            let settings =
                Settings::load(Path::new("adam.toml"), &CliOverrides::default()).expect("loads");
            let password = settings.email.smtp.password.expect("password set");
            assert_eq!(password.expose_secret(), "00012345");
            let key = settings.email.mailgun.api_key.expect("key set");
            assert_eq!(key.expose_secret(), "key-0042");

            jail.create_file(
                "leaky.toml",
                "[email.mailgun]\napi_key = \"key-in-a-file\"\n",
            )?;
            let err = Settings::load(Path::new("leaky.toml"), &CliOverrides::default())
                .expect_err("a key in the file is refused");
            assert!(err.to_string().contains("api_key"), "{err}");
            Ok(())
        });
    }
}
