//! Tracing setup: human or JSON lines, filtered by config or `RUST_LOG`, and `ERROR`
//! events and panics reported to a Sentry-compatible service when a DSN is set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::reporting::ErrorReporter;
use crate::settings::{Environment, LogFormat, Settings};

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
