//! Prometheus metrics. [`Metrics`] owns its registry (no globals), so parallel tests
//! and several apps in one process never collide; later subsystems add their own series.

use std::net::SocketAddr;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every series Adam exports.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by method, matched route and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency by method and matched route.
    pub http_duration: HistogramVec,
    /// Requests refused by a rate limit, by scope (`ip`, `user`, `login`).
    pub rate_limited: IntCounterVec,
    /// Failed logins.
    pub login_failures: IntCounter,
    /// Refresh-token reuse detections (a family was revoked).
    pub refresh_reuse: IntCounter,
    /// bcrypt runs (`adam_password_hashes_total{op}`).
    pub password_hashes: crate::auth::password::HashCounter,
    /// Resident memory of this process, read at each scrape.
    pub resident_memory: prometheus::IntGauge,
    /// Open file descriptors of this process, read at each scrape.
    pub open_fds: prometheus::IntGauge,
    /// Tokio tasks alive in the runtime serving the scrape.
    pub tokio_tasks: prometheus::IntGauge,
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("adam".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused with 429, by limit"),
            &["scope"],
        )?;
        // Every limit's series exists from the start: dashboards show 0, not "no data".
        for scope in [
            "ip",
            "user",
            "login",
            "password_reset",
            "session_start",
            "concurrent_sessions",
            "usage_cap",
            "password_reset_confirm",
        ] {
            rate_limited.with_label_values(&[scope]);
        }
        let login_failures = IntCounter::new("login_failures_total", "Failed login attempts")?;
        let refresh_reuse = IntCounter::new(
            "refresh_token_reuse_total",
            "Replays of a rotated refresh token (family revoked)",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(login_failures.clone()))?;
        let resident_memory = prometheus::IntGauge::new(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
        )?;
        let open_fds = prometheus::IntGauge::new(
            "process_open_fds",
            "Open file descriptors of the server process",
        )?;
        let tokio_tasks = prometheus::IntGauge::new(
            "tokio_alive_tasks",
            "Tokio tasks alive in the server's runtime",
        )?;
        registry.register(Box::new(refresh_reuse.clone()))?;
        registry.register(Box::new(resident_memory.clone()))?;
        registry.register(Box::new(open_fds.clone()))?;
        registry.register(Box::new(tokio_tasks.clone()))?;
        let password_hashes = crate::auth::password::HashCounter::new(&registry)?;
        Ok(Self {
            password_hashes,
            registry,
            http_requests,
            http_duration,
            rate_limited,
            login_failures,
            refresh_reuse,
            resident_memory,
            open_fds,
            tokio_tasks,
        })
    }

    /// The registry, for subsystems that add series.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.resident_memory.set(rss);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.tokio_tasks
                .set(runtime.metrics().num_alive_tasks() as i64);
        }
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %err, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Resident set size from `/proc/self/statm` (Linux), in bytes.
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `[metrics]`: `/metrics` on its own listener (kept off the public one) and/or behind a
/// bearer token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of a listener serving only `GET /metrics` (port 0 picks a free one); the
    /// main listener then answers 404 for `/metrics`. Unset: `/metrics` is served by the
    /// main listener (loopback-only by default).
    pub listen: Option<SocketAddr>,
    /// Bearer token `/metrics` requires wherever it is served, from
    /// `ADAM__METRICS__TOKEN` only (refused in the file); unset: no token.
    #[serde(skip)]
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(token) = &self.token
            && token.expose_secret().len() < 16
        {
            return Err((
                "metrics.token",
                "must be at least 16 bytes (use e.g. `openssl rand -hex 16`)".into(),
            ));
        }
        Ok(())
    }
}
