//! Bounded worker pools for model inference: at most `workers` jobs of one model run at
//! once (on tokio's blocking threads, never on the async workers or an actor's mailbox);
//! the rest wait in a queue whose wait time is measured. [`ModelPool::saturated`] is the
//! admission signal: when a model's queue is already long, new sessions are refused
//! ("busy") instead of every live session slowing down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use adam_actors::ports::{CancellationToken, ProviderError};
use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};
use tokio::sync::Semaphore;

/// Queue-time and occupancy series shared by every pool (label `model`).
#[derive(Debug, Clone)]
pub struct PoolMetrics {
    queue_seconds: HistogramVec,
    run_seconds: HistogramVec,
    waiting: IntGaugeVec,
}

impl PoolMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let queue_seconds = HistogramVec::new(
            HistogramOpts::new(
                "model_queue_seconds",
                "Time a job waited for a model worker",
            )
            .buckets(buckets.clone()),
            &["model"],
        )?;
        let run_seconds = HistogramVec::new(
            HistogramOpts::new("model_run_seconds", "Time a model job ran").buckets(buckets),
            &["model"],
        )?;
        let waiting = IntGaugeVec::new(
            Opts::new("model_queue_length", "Jobs waiting for a model worker"),
            &["model"],
        )?;
        registry.register(Box::new(queue_seconds.clone()))?;
        registry.register(Box::new(run_seconds.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        Ok(Self {
            queue_seconds,
            run_seconds,
            waiting,
        })
    }

    /// Series that are not exported anywhere (tests, tools).
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("fresh registry accepts the pool series")
    }
}

/// At most `workers` concurrent jobs for one model.
#[derive(Debug)]
pub struct ModelPool {
    model: &'static str,
    permits: Semaphore,
    waiting: AtomicUsize,
    saturation: usize,
    metrics: PoolMetrics,
}

impl ModelPool {
    /// A pool for `model` running `workers` jobs at once; it reports saturation once
    /// `saturation` jobs are waiting.
    pub fn new(
        model: &'static str,
        workers: usize,
        saturation: usize,
        metrics: PoolMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            model,
            permits: Semaphore::new(workers.max(1)),
            waiting: AtomicUsize::new(0),
            saturation: saturation.max(1),
            metrics,
        })
    }

    /// The model's name.
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// Jobs waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// True when new sessions should be refused.
    pub fn saturated(&self) -> bool {
        self.waiting() >= self.saturation
    }

    /// Runs `job` on a blocking thread once a worker is free. Cancelling while queued
    /// gives up the place in the queue; a job already running finishes (its result is
    /// dropped) — jobs that can stop early watch `cancel` themselves.
    pub async fn run<T, F>(&self, cancel: &CancellationToken, job: F) -> Result<T, ProviderError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ProviderError> + Send + 'static,
    {
        let queued = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let gauge = self.metrics.waiting.with_label_values(&[self.model]);
        gauge.inc();
        let permit = tokio::select! {
            p = self.permits.acquire() => p,
            _ = cancel.cancelled() => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                gauge.dec();
                return Err(ProviderError::Cancelled);
            }
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        gauge.dec();
        let _permit = permit.map_err(|_| ProviderError::Unavailable("pool closed".into()))?;
        self.metrics
            .queue_seconds
            .with_label_values(&[self.model])
            .observe(queued.elapsed().as_secs_f64());
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(job).await.map_err(|e| {
            ProviderError::Unavailable(format!("{} worker failed: {e}", self.model))
        })?;
        self.metrics
            .run_seconds
            .with_label_values(&[self.model])
            .observe(started.elapsed().as_secs_f64());
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use super::*;

    /// Polls `check` until it holds or two seconds pass.
    async fn eventually(check: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        check()
    }

    #[tokio::test]
    async fn a_full_pool_queues_reports_saturation_and_lets_cancelled_waiters_go() {
        let registry = Registry::new();
        let pool = ModelPool::new("m", 1, 2, PoolMetrics::new(&registry).expect("metrics"));
        let (release, gate) = std_mpsc::channel::<()>();
        let never = CancellationToken::new();
        // One job holds the only worker until released.
        let busy = {
            let pool = pool.clone();
            let never = never.clone();
            tokio::spawn(async move {
                pool.run(&never, move || {
                    gate.recv().ok();
                    Ok(1)
                })
                .await
            })
        };
        let waiter = |cancel: CancellationToken| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(&cancel, || Ok(2)).await })
        };
        let first = CancellationToken::new();
        let w1 = waiter(first.clone());
        assert!(eventually(|| pool.waiting() == 1).await);
        assert!(!pool.saturated());
        let w2 = waiter(never.clone());
        assert!(eventually(|| pool.saturated()).await, "two waiting");
        // A cancelled waiter leaves the queue at once.
        first.cancel();
        assert_eq!(w1.await.expect("join"), Err(ProviderError::Cancelled));
        assert!(!pool.saturated());
        release.send(()).expect("release");
        assert_eq!(busy.await.expect("join"), Ok(1));
        assert_eq!(w2.await.expect("join"), Ok(2));
        assert_eq!(pool.waiting(), 0);
        let text = registry
            .gather()
            .iter()
            .find(|f| f.name() == "model_queue_seconds")
            .map(|f| f.get_metric()[0].get_histogram().get_sample_count());
        assert_eq!(text, Some(2), "two jobs got a worker and were timed");
    }
}
