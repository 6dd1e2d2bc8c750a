//! Error reporting to a Sentry-compatible service (Sentry, GlitchTip, Bugsink…), on when
//! `ADAM__LOG__ERROR_REPORTING_DSN` is set: every `ERROR` log event and every panic (a
//! panicking actor included: its supervisor goes on) becomes an event posted to the DSN's
//! envelope endpoint (`{scheme}://{host}/api/{project}/envelope/`, `X-Sentry-Auth` with the
//! DSN's public key). Reporting never blocks the code that logs: events go through a bounded
//! queue to one task, and are dropped when it is full or the service fails.
//!
//! Written against the documented envelope format rather than with the `sentry` crate, which
//! would add a second HTTP client stack for one POST.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;

/// Events waiting to be sent before new ones are dropped.
const QUEUE: usize = 256;

/// Where events go, read from a DSN `{scheme}://{public_key}@{host}[/{path}]/{project}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    envelope_url: String,
    public_key: String,
}

impl Dsn {
    /// Parses a DSN.
    pub fn parse(dsn: &str) -> anyhow::Result<Self> {
        let url =
            reqwest::Url::parse(dsn.trim()).context("the error-reporting DSN is not a URL")?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "the error-reporting DSN must be http:// or https://"
        );
        let public_key = url.username().to_owned();
        anyhow::ensure!(
            !public_key.is_empty(),
            "the error-reporting DSN has no public key"
        );
        let host = url
            .host_str()
            .context("the error-reporting DSN has no host")?;
        let path = url.path().trim_end_matches('/');
        let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
        anyhow::ensure!(
            !project.is_empty(),
            "the error-reporting DSN has no project id"
        );
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Self {
            envelope_url: format!(
                "{}://{host}{port}{prefix}/api/{project}/envelope/",
                url.scheme()
            ),
            public_key,
        })
    }
}

/// The tracing layer that reports `ERROR` events.
#[derive(Debug, Clone)]
pub struct ErrorReporter {
    tx: mpsc::Sender<Value>,
}

impl ErrorReporter {
    /// Starts the sending task for `dsn`; `environment` and `server_name` tag every event.
    /// Also reports panics (the previous panic hook still runs).
    pub fn start(dsn: &SecretString, environment: &str, server_name: &str) -> anyhow::Result<Self> {
        let dsn = Dsn::parse(dsn.expose_secret())?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the error-reporting client")?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let tags = json!({
            "environment": environment,
            "server_name": server_name,
            "release": concat!("adam@", env!("CARGO_PKG_VERSION")),
        });
        tokio::spawn(send(rx, client, dsn, tags));
        let reporter = Self { tx };
        let panics = reporter.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            panics.report(
                "fatal",
                "panic",
                &format!("{message}{location}"),
                BTreeMap::new(),
            );
            previous(info);
        }));
        Ok(reporter)
    }

    fn report(&self, level: &str, logger: &str, message: &str, extra: BTreeMap<String, String>) {
        let event = json!({
            "event_id": crate::traces::hex_id::<16>(),
            "timestamp": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            "platform": "other",
            "level": level,
            "logger": logger,
            "message": {"formatted": message},
            "extra": extra,
        });
        // Full or closed: dropped; reporting must never slow the code that logs.
        let _ = self.tx.try_send(event);
    }
}

async fn send(mut rx: mpsc::Receiver<Value>, client: reqwest::Client, dsn: Dsn, tags: Value) {
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=adam/{}, sentry_key={}",
        env!("CARGO_PKG_VERSION"),
        dsn.public_key
    );
    while let Some(mut event) = rx.recv().await {
        if let (Some(event), Some(tags)) = (event.as_object_mut(), tags.as_object()) {
            event.extend(tags.clone());
        }
        let header = json!({"event_id": event["event_id"]});
        let body = format!("{header}\n{}\n{event}\n", json!({"type": "event"}));
        let sent = client
            .post(&dsn.envelope_url)
            .header("x-sentry-auth", &auth)
            .header("content-type", "application/x-sentry-envelope")
            .body(body)
            .send()
            .await;
        if let Err(e) = sent.and_then(|r| r.error_for_status()) {
            // A warning, not an error: an error would be reported again.
            tracing::warn!(error = %e, "reporting an error event failed");
        }
    }
}

/// The message and fields of one event.
#[derive(Default)]
struct Fields {
    message: String,
    extra: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.extra
                .insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.extra.insert(field.name().to_owned(), value.to_owned());
        }
    }
}

impl<S: Subscriber> Layer<S> for ErrorReporter {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.report(
            "error",
            event.metadata().target(),
            &fields.message,
            fields.extra,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[tokio::test]
    async fn error_events_reach_the_service_as_envelopes() {
        type Seen = Arc<Mutex<Vec<(String, String)>>>;
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route(
                "/api/{project}/envelope/",
                axum::routing::post(
                    |axum::extract::State(seen): axum::extract::State<Seen>,
                     headers: axum::http::HeaderMap,
                     body: String| async move {
                        let auth = headers
                            .get("x-sentry-auth")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock().expect("lock").push((auth, body));
                        "{}"
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dsn = SecretString::from(format!("http://public-key@{addr}/3"));
        let reporter = ErrorReporter::start(&dsn, "production", "node-a").expect("reporter");
        let subscriber = tracing_subscriber::registry().with(reporter);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("only a warning");
            tracing::error!(session_id = "sess-1", "saving a turn failed");
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().expect("lock").is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1, "the error only: {seen:?}");
        let (auth, body) = &seen[0];
        assert!(auth.contains("sentry_key=public-key"), "{auth}");
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines[1]["type"], "event");
        let event = &lines[2];
        assert_eq!(lines[0]["event_id"], event["event_id"]);
        assert_eq!(event["level"], "error");
        assert_eq!(event["message"]["formatted"], "saving a turn failed");
        assert_eq!(event["extra"]["session_id"], "sess-1");
        assert_eq!(event["environment"], "production");
        assert_eq!(event["server_name"], "node-a");
    }

    #[test]
    fn a_dsn_gives_the_envelope_endpoint_and_key() {
        let dsn = Dsn::parse("https://abc123@errors.example.com/42").expect("dsn");
        assert_eq!(
            dsn.envelope_url,
            "https://errors.example.com/api/42/envelope/"
        );
        assert_eq!(dsn.public_key, "abc123");
        let dsn = Dsn::parse("http://k@127.0.0.1:9000/sentry/7").expect("dsn");
        assert_eq!(
            dsn.envelope_url,
            "http://127.0.0.1:9000/sentry/api/7/envelope/"
        );
        for bad in [
            "errors.example.com/42",
            "https://errors.example.com/42",
            "https://k@host/",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad}");
        }
    }
}
