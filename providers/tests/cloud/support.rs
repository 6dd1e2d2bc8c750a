//! Helpers shared by the client tests: short timeouts, polling, metrics.

use std::future::Future;
use std::time::Duration;

use adam_providers::cloud::metrics::ProviderMetrics;
use adam_providers::cloud::resilience::ResilienceConfig;
use prometheus::Registry;
use prometheus::proto::MetricType;
use secrecy::SecretString;

/// Short timeouts so failures show quickly; no breaker unless a test turns it on.
pub fn resilience() -> ResilienceConfig {
    ResilienceConfig {
        connect_timeout_ms: 2_000,
        first_byte_timeout_ms: 2_000,
        idle_timeout_ms: 300,
        total_timeout_ms: 8_000,
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        max_retry_after_ms: 3_000,
        breaker_failures: 0,
        breaker_cooldown_ms: 200,
    }
}

pub fn no_retries() -> ResilienceConfig {
    ResilienceConfig {
        max_retries: 0,
        ..resilience()
    }
}

/// Only the idle timeout is short: a `Timeout` within the test's limit can only come
/// from the dead-socket detection.
pub fn only_idle_timeout() -> ResilienceConfig {
    ResilienceConfig {
        first_byte_timeout_ms: 60_000,
        total_timeout_ms: 60_000,
        ..no_retries()
    }
}

pub fn key(k: &str) -> SecretString {
    SecretString::from(k.to_owned())
}

/// Metrics in a registry of their own.
pub fn metrics() -> (Registry, ProviderMetrics) {
    let registry = Registry::new();
    let metrics = ProviderMetrics::register(&registry).expect("register");
    (registry, metrics)
}

/// The value of counter or gauge `name` (a histogram's sample count) summed over the
/// series with these labels (0 when absent).
pub fn value(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for family in registry.gather().iter().filter(|f| f.name() == name) {
        let kind = family.get_field_type();
        for m in family.get_metric() {
            let matches = labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            if !matches {
                continue;
            }
            total += match kind {
                MetricType::COUNTER => m.get_counter().get_value(),
                MetricType::GAUGE => m.get_gauge().get_value(),
                _ => m.get_histogram().get_sample_count() as f64,
            };
        }
    }
    total
}

/// Polls `check` every 10 ms until it holds; fails the test after 5 s.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let polled = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), polled)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// `future`, which must finish within `limit` (a hung client fails the test instead of
/// hanging it).
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("the call finished in time")
}

/// Runs `attempt` until it returns true, 10 ms apart; fails the test after 5 s.
pub async fn until<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let polled = async {
        while !attempt().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), polled)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}
