//! The provider series. Registered without a prefix; the server's registry adds `adam_`,
//! so they are exported as `adam_provider_requests_total{provider,stage,outcome}`,
//! `adam_provider_latency_seconds{provider,stage}` (time to the first output of an
//! attempt) and `adam_provider_circuit_open{provider}`.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Handles to the provider series; cheap to clone, shared by every client.
#[derive(Clone, Debug)]
pub struct ProviderMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    circuit_open: IntGaugeVec,
}

impl ProviderMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "provider_requests_total",
                "Provider attempts by outcome (ok, timeout, unavailable, rate_limited, \
                 rejected, cancelled, circuit_open)",
            ),
            &["provider", "stage", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "provider_latency_seconds",
                "Time from the start of a provider attempt to its first output",
            )
            .buckets(vec![
                0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
            ]),
            &["provider", "stage"],
        )?;
        let circuit_open = IntGaugeVec::new(
            Opts::new(
                "provider_circuit_open",
                "1 while a provider's circuit breaker is open or half-open",
            ),
            &["provider"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(circuit_open.clone()))?;
        Ok(Self {
            requests,
            latency,
            circuit_open,
        })
    }

    /// Series registered nowhere (tests and tools).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry accepts the provider series")
    }

    pub(crate) fn attempt(&self, provider: &str, stage: &str, outcome: &str) {
        self.requests
            .with_label_values(&[provider, stage, outcome])
            .inc();
    }

    pub(crate) fn first_output(&self, provider: &str, stage: &str, after: Duration) {
        self.latency
            .with_label_values(&[provider, stage])
            .observe(after.as_secs_f64());
    }

    pub(crate) fn circuit(&self, provider: &str, open: bool) {
        self.circuit_open
            .with_label_values(&[provider])
            .set(i64::from(open));
    }
}
