//! Tracing setup: human or JSON lines, filtered by config or `RUST_LOG`, and `ERROR`
//! events and panics reported to a Sentry-compatible service when a DSN is set.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::reporting::ErrorReporter;
use crate::settings::{Environment, Settings};

/// Installs the global subscriber once; later calls are ignored (tests call it freely).
/// Must run inside the Tokio runtime when error reporting is on (it spawns its sender).
pub fn init(settings: &Settings) {
    let log = &settings.log;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (reporter, refused) = match &log.error_reporting_dsn {
        None => (None, None),
        Some(dsn) => {
            let environment = match settings.environment {
                Environment::Development => "development",
                Environment::Production => "production",
            };
            let server = std::env::var("HOSTNAME").unwrap_or_else(|_| "adam".into());
            match ErrorReporter::start(dsn, environment, &server) {
                Ok(reporter) => (Some(reporter), None),
                Err(e) => (None, Some(e)),
            }
        }
    };
    let registry = tracing_subscriber::registry().with(filter).with(reporter);
    let _ = match log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let Some(e) = refused {
        tracing::warn!(error = %e, "error reporting is off: bad ADAM__LOG__ERROR_REPORTING_DSN");
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// EnvFilter directives.
    pub filter: String,
    /// OTLP/HTTP collector for one trace per conversation turn (e.g.
    /// `http://otel-collector:4318`); empty: no traces.
    pub otlp_endpoint: String,
    /// `service.name` of the exported traces.
    pub otlp_service_name: String,
    /// Sentry-compatible DSN that `ERROR` events and panics are reported to; from
    /// `ADAM__LOG__ERROR_REPORTING_DSN` only.
    #[serde(skip_serializing)]
    pub error_reporting_dsn: Option<SecretString>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info,adam=info,sqlx=warn,tower_http=info".into(),
            otlp_endpoint: String::new(),
            otlp_service_name: "adam".into(),
            error_reporting_dsn: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line for log shippers.
    Json,
}
