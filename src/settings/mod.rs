//! Typed settings: `config.toml` < `ADAM__SECTION__KEY` environment < CLI flags,
//! validated at startup with messages that name the key at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::api::web::WebSettings;
pub use crate::auth::AuthSettings;
pub use crate::bootstrap::BootstrapSettings;
pub use crate::cluster::ClusterSettings;
pub use crate::db::DatabaseSettings;
pub use crate::knowledge::KnowledgeSettings;
pub use crate::metrics::MetricsSettings;
pub use crate::middleware::RateLimitSettings;
pub use crate::realtime::webrtc::WebRtcSettings;
pub use crate::realtime::{CacheSettings, SessionSettings};
pub use crate::telemetry::{LogFormat, LogSettings};
pub use adam_providers::registry::ProviderSettings;

/// Everything Adam can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `development` or `production`.
    pub environment: Environment,
    /// Folder for the SQLite file, generated keys and uploads.
    pub data_dir: PathBuf,
    /// HTTP listener and browser-facing policy.
    pub http: HttpSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Tokens and login throttling.
    pub auth: AuthSettings,
    /// Request rate limits.
    pub rate_limit: RateLimitSettings,
    /// Logging.
    pub log: LogSettings,
    /// First-run bootstrap.
    pub bootstrap: BootstrapSettings,
    /// Live conversations.
    pub session: SessionSettings,
    /// Speech, language and avatar providers.
    pub providers: ProviderSettings,
    /// Shared caches.
    pub cache: CacheSettings,
    /// Documents, chunking, vector store and retrieval.
    pub knowledge: KnowledgeSettings,
    /// The WebRTC transport.
    pub webrtc: WebRtcSettings,
    /// The browser client and admin pages.
    pub web: WebSettings,
    /// Outgoing email.
    pub email: crate::email::EmailSettings,
    /// Test-only switches, all off by default.
    pub testing: TestingSettings,
    /// Several nodes sharing Redis.
    pub cluster: ClusterSettings,
    /// Per-dealership usage limits (node defaults).
    pub limits: crate::limits::LimitSettings,
    /// Transcript retention and the recording notice (node defaults).
    pub privacy: crate::privacy::PrivacySettings,
    /// Where Prometheus reads `/metrics`, and the token it needs.
    pub metrics: MetricsSettings,
    /// Speech recognition biased with each dealership's names.
    pub vocabulary: crate::knowledge::vocabulary::VocabularySettings,
}

/// `[testing]`: switches for fault-injection tests; refused in `production`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingSettings {
    /// Enables `POST /v1/sessions/{id}/faults` (super_admin only), which makes a live
    /// session's child actor panic. Off by default; never allowed in production.
    pub fault_injection: bool,
}

/// Deployment mode; production refuses to invent secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local use: a JWT key is generated and kept under `data_dir` if none is set.
    Development,
    /// Deployed: every secret must come from the environment.
    Production,
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The URL people open.
    pub public_url: String,
    /// Largest request body, bytes.
    pub body_limit_bytes: usize,
    /// CORS allowlist (credentials allowed only for these).
    pub cors_allowed_origins: Vec<String>,
    /// Take the client IP from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Seconds in-flight requests get after a shutdown signal.
    pub shutdown_grace_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            data_dir: PathBuf::from("data"),
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            auth: AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            log: LogSettings::default(),
            bootstrap: BootstrapSettings::default(),
            session: SessionSettings::default(),
            providers: ProviderSettings::default(),
            cache: CacheSettings::default(),
            knowledge: KnowledgeSettings::default(),
            webrtc: WebRtcSettings::default(),
            web: WebSettings::default(),
            email: Default::default(),
            testing: TestingSettings::default(),
            cluster: ClusterSettings::default(),
            limits: Default::default(),
            privacy: Default::default(),
            metrics: MetricsSettings::default(),
            vocabulary: Default::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            body_limit_bytes: 1 << 20,
            cors_allowed_origins: vec![
                "http://127.0.0.1:8080".into(),
                "http://localhost:8080".into(),
            ],
            trust_forwarded_for: false,
            shutdown_grace_secs: 10,
        }
    }
}

/// A setting that failed to load or validate; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or an environment variable could not be parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value parsed but makes no sense.
    #[error("configuration key `{key}`: {problem}")]
    Invalid {
        /// Dotted key, e.g. `auth.access_ttl_secs`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Flags given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CliOverrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--log-format`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Secret settings other than the providers' API keys (those are
/// [`adam_providers::registry::Account`]'s table), with the variables they come from.
const SECRET_VARS: [(&str, &str); 9] = [
    ("cluster.redis_url", "ADAM__CLUSTER__REDIS_URL"),
    ("metrics.token", "ADAM__METRICS__TOKEN"),
    ("auth.jwt_secret", "ADAM__AUTH__JWT_SECRET"),
    ("log.error_reporting_dsn", "ADAM__LOG__ERROR_REPORTING_DSN"),
    (
        "bootstrap.admin_password",
        "ADAM__BOOTSTRAP__ADMIN_PASSWORD",
    ),
    (
        "knowledge.pinecone.api_key",
        crate::knowledge::pinecone::PineconeConfig::API_KEY_ENV,
    ),
    (
        "webrtc.turn_shared_secret",
        "ADAM__WEBRTC__TURN_SHARED_SECRET",
    ),
    (
        "email.smtp.password",
        crate::email::SmtpSettings::PASSWORD_ENV,
    ),
    (
        "email.mailgun.api_key",
        crate::email::MailgunSettings::API_KEY_ENV,
    ),
];

/// Every secret's dotted key: figment must not read these from the environment (they
/// are taken verbatim below, since figment would turn `00012345` into a number).
fn secret_keys() -> Vec<&'static str> {
    let providers = adam_providers::registry::Account::ALL.map(|a| a.settings_key());
    SECRET_VARS
        .iter()
        .map(|(key, _)| *key)
        .chain(providers)
        .collect()
}

/// The trimmed, non-empty value of `var`.
fn secret_from_env(var: &str) -> Option<SecretString> {
    std::env::var(var)
        .map(|v| v.trim().to_owned())
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

impl Settings {
    /// Loads `config_path` (if it exists), then `ADAM__…` variables, then CLI flags.
    pub fn load(config_path: &Path, cli: &CliOverrides) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(config_path))
            .merge(
                Env::prefixed("ADAM__")
                    .split("__")
                    .lowercase(true)
                    .ignore(&secret_keys()),
            );
        if let Some(listen) = cli.listen {
            figment = figment.merge(Serialized::default("http.listen", listen));
        }
        if let Some(url) = &cli.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        if let Some(format) = cli.log_format {
            figment = figment.merge(Serialized::default("log.format", format));
        }
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        for (key, var) in SECRET_VARS {
            let Some(secret) = secret_from_env(var) else {
                continue;
            };
            let slot = match key {
                "auth.jwt_secret" => &mut settings.auth.jwt_secret,
                "log.error_reporting_dsn" => &mut settings.log.error_reporting_dsn,
                "knowledge.pinecone.api_key" => &mut settings.knowledge.pinecone.api_key,
                "webrtc.turn_shared_secret" => &mut settings.webrtc.turn_shared_secret,
                "email.smtp.password" => &mut settings.email.smtp.password,
                "email.mailgun.api_key" => &mut settings.email.mailgun.api_key,
                "cluster.redis_url" => &mut settings.cluster.redis_url,
                "metrics.token" => &mut settings.metrics.token,
                _ => &mut settings.bootstrap.admin_password,
            };
            *slot = Some(secret);
        }
        for account in adam_providers::registry::Account::ALL {
            if let Some(secret) = secret_from_env(account.env_var()) {
                settings.providers.keys.set(account, secret);
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but cannot work: each section checks itself, then the
    /// rules that span sections.
    pub fn validate(&self) -> Result<(), SettingsError> {
        fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
            SettingsError::Invalid {
                key,
                problem: problem.into(),
            }
        }
        let sections = [
            self.database.validate(),
            self.limits
                .check()
                .map_err(|(field, problem)| ("limits", format!("{field} {problem}"))),
            self.privacy.validate(),
            self.auth.validate(),
            self.rate_limit.validate(),
            self.knowledge.validate(!self.database.is_sqlite()),
            self.http.validate(),
            self.webrtc.validate(),
            self.cluster.validate(),
            self.session.validate(),
            self.providers.validate(),
            self.cache.validate(),
            self.metrics.validate(),
            self.bootstrap.validate(),
            self.email.validate(),
            self.vocabulary.validate(),
        ];
        if let Some((key, problem)) = sections.into_iter().find_map(Result::err) {
            return Err(invalid(key, problem));
        }
        let production = self.environment == Environment::Production;
        if production && self.testing.fault_injection {
            return Err(invalid(
                "testing.fault_injection",
                "must be false in production: it lets an admin crash live conversations",
            ));
        }
        if production && self.auth.jwt_secret.is_none() {
            return Err(invalid(
                "auth.jwt_secret",
                "is required in production: set ADAM__AUTH__JWT_SECRET",
            ));
        }
        if production && self.providers.profile == adam_providers::registry::Profile::Simulated {
            return Err(invalid(
                "providers.profile",
                "must not be \"simulated\" in production: it answers with made-up transcripts; \
                 use \"embedded\" (the local models)",
            ));
        }
        let m = &self.metrics;
        if m.listen
            .is_some_and(|addr| addr == self.http.listen && addr.port() != 0)
        {
            return Err(invalid(
                "metrics.listen",
                "must differ from http.listen (unset it to serve /metrics there)",
            ));
        }
        if production && m.listen.is_none() && m.token.is_none() {
            return Err(invalid(
                "metrics.listen",
                "production must not serve /metrics on the public listener without a token: set \
                 metrics.listen (e.g. 127.0.0.1:9464, or 0.0.0.0:9464 on a private network) \
                 or ADAM__METRICS__TOKEN",
            ));
        }
        if production
            && self.email.transport == crate::email::TransportKind::Log
            && !self.email.allow_log_transport_in_production
        {
            return Err(invalid(
                "email.transport",
                "is \"log\" in production: emails would be written to disk, never sent; choose \
                 \"smtp\" or \"mailgun\" (see docs/DEPLOYMENT.md), or set \
                 email.allow_log_transport_in_production = true",
            ));
        }
        Ok(())
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database.is_sqlite()
    }
}

impl HttpSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.body_limit_bytes < 1024 {
            return Err(("http.body_limit_bytes", "must be at least 1024".into()));
        }
        for origin in &self.cors_allowed_origins {
            if origin == "*" || !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err((
                    "http.cors_allowed_origins",
                    format!("`{origin}` must be an http(s) origin; wildcards are not allowed"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
