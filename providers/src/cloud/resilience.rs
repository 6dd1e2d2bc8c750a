//! The resilience layer: what every provider call goes through.
//!
//! A [`ProviderGuard`] belongs to one provider (one client instance) and runs each call as
//! a series of attempts:
//! - **Timeouts**: the first output of an attempt must arrive within `first_byte_timeout`
//!   (for a call without streamed output, the result itself), and the whole call, retries
//!   included, within `total_timeout`. Connect and between-message (`idle_timeout`)
//!   timeouts are applied by the clients, which see the connection.
//! - **Retries**: a timed-out, unavailable or rate-limited attempt is retried with
//!   jittered exponential backoff, or after the provider's `Retry-After`, but only while
//!   nothing has reached the caller: streamed output is never duplicated.
//! - **Circuit breaker**: consecutive failures open it; calls then fail at once (so a
//!   [`fallback`](super::fallback) chain moves on without waiting), and a probe is let
//!   through after the cool-down.
//! - **Metrics**: every attempt is counted by outcome; the time to first output is
//!   observed.
//!
//! [`Guarded`](super::guarded::Guarded) puts any port implementation (espeak, a local
//! model) behind a guard; the cloud clients hold their own guard, and also pass the
//! provider's `Retry-After`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use adam_actors::ports::{CancellationToken, ProviderError};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::breaker::{Admission, Breaker, Outcome};
use super::metrics::ProviderMetrics;

/// Timeouts, retries and circuit breaker of one provider (`[providers.X.resilience]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Longest TCP + TLS (+ WebSocket handshake) setup, ms.
    pub connect_timeout_ms: u64,
    /// Longest wait from the start of an attempt to its first output (first token, first
    /// audio; for a call without streamed output, its result), ms.
    pub first_byte_timeout_ms: u64,
    /// Longest silence from the provider while output is expected, ms: a stream that
    /// stops mid-way, or a WebSocket that accepted and then went quiet, fails with a
    /// timeout instead of hanging.
    pub idle_timeout_ms: u64,
    /// Longest whole call, retries and backoff included, ms.
    pub total_timeout_ms: u64,
    /// Retries after a timeout, a 5xx, a 429 or a network error, only while nothing was
    /// emitted (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// First backoff, ms; doubled per retry, with jitter.
    pub backoff_initial_ms: u64,
    /// Longest backoff, ms.
    pub backoff_max_ms: u64,
    /// A `Retry-After` longer than this is not waited for: the call fails (and a fallback
    /// provider, if any, answers instead), ms.
    pub max_retry_after_ms: u64,
    /// Consecutive failed attempts that open the circuit breaker (0: never).
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one probe through, ms.
    pub breaker_cooldown_ms: u64,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 3_000,
            first_byte_timeout_ms: 8_000,
            idle_timeout_ms: 5_000,
            total_timeout_ms: 30_000,
            max_retries: 2,
            backoff_initial_ms: 100,
            backoff_max_ms: 2_000,
            max_retry_after_ms: 5_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 10_000,
        }
    }
}

impl ResilienceConfig {
    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Jittered backoff before retry number `retry` (0 for the first): a random duration
    /// between half and all of `initial × 2^retry`, capped at the maximum.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .backoff_initial_ms
            .saturating_mul(1u64 << retry.min(20))
            .min(self.backoff_max_ms);
        let ms = rand::rng().random_range(ceiling / 2..=ceiling);
        Duration::from_millis(ms)
    }
}

/// The pipeline stage a provider serves (the `stage` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Speech to text.
    Stt,
    /// Answer generation.
    Answer,
    /// Embedding texts.
    Embed,
    /// Text to speech.
    Tts,
    /// A remote avatar (starting its session).
    Avatar,
}

impl Stage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Stt => "stt",
            Stage::Answer => "answer",
            Stage::Embed => "embed",
            Stage::Tts => "tts",
            Stage::Avatar => "avatar",
        }
    }
}

/// Why one attempt failed, with what the provider said about retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error the caller sees if this is the last attempt.
    pub error: ProviderError,
    /// The provider's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The provider said "too many requests".
    pub rate_limited: bool,
}

impl Failure {
    /// A rate limit (HTTP 429 or the vendor's equivalent).
    pub fn rate_limited(message: String, retry_after: Option<Duration>) -> Self {
        Self {
            error: ProviderError::Unavailable(message),
            retry_after,
            rate_limited: true,
        }
    }

    fn outcome_label(&self) -> &'static str {
        match &self.error {
            _ if self.rate_limited => "rate_limited",
            ProviderError::Timeout => "timeout",
            ProviderError::Cancelled => "cancelled",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Rejected(_) => "rejected",
        }
    }

    fn breaker_outcome(&self) -> Outcome {
        match self.error {
            ProviderError::Timeout | ProviderError::Unavailable(_) => Outcome::Failure,
            ProviderError::Rejected(_) => Outcome::Success,
            ProviderError::Cancelled => Outcome::Neutral,
        }
    }

    fn retryable(&self) -> bool {
        matches!(
            self.error,
            ProviderError::Timeout | ProviderError::Unavailable(_)
        )
    }
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Self {
            error,
            retry_after: None,
            rate_limited: false,
        }
    }
}

/// Whether a call has emitted anything, shared by its attempts.
struct Emitted {
    flag: AtomicBool,
    signal: watch::Sender<bool>,
}

impl Emitted {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            flag: AtomicBool::new(false),
            signal: watch::channel(false).0,
        })
    }

    fn get(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Marks the call; true the first time.
    fn mark(&self) -> bool {
        let first = !self.flag.swap(true, Ordering::SeqCst);
        if first {
            self.signal.send_replace(true);
        }
        first
    }
}

/// Where an attempt sends its output: the caller's channel, remembering whether
/// anything was sent (after which nothing is retried or falls back).
pub struct Emitter<T> {
    out: mpsc::Sender<T>,
    emitted: Arc<Emitted>,
    first: Option<FirstOutput>,
}

struct FirstOutput {
    metrics: ProviderMetrics,
    provider: Arc<str>,
    stage: Stage,
    started: Instant,
}

impl<T> Emitter<T> {
    /// An emitter outside any guard (fallback chains use it to see whether a provider
    /// emitted anything).
    pub fn new(out: mpsc::Sender<T>) -> Self {
        Self {
            out,
            emitted: Emitted::new(),
            first: None,
        }
    }

    /// Sends `item` to the caller; `Cancelled` when the caller has gone.
    pub async fn send(&self, item: T) -> Result<(), ProviderError> {
        // Marked before the send: once an item is handed over (even into a full
        // channel) the output has started and must not be produced twice.
        if self.emitted.mark()
            && let Some(first) = &self.first
        {
            first.metrics.first_output(
                &first.provider,
                first.stage.as_str(),
                first.started.elapsed(),
            );
        }
        self.out
            .send(item)
            .await
            .map_err(|_| ProviderError::Cancelled)
    }

    /// True once anything was sent.
    pub fn emitted(&self) -> bool {
        self.emitted.get()
    }
}

/// Runs `work` (a port call writing into `rx`'s sender) while forwarding what it emits
/// to `out`; returns the call's result once it and the forwarding are done.
pub(crate) async fn pump<T, R>(
    work: impl Future<Output = Result<R, ProviderError>>,
    mut rx: mpsc::Receiver<T>,
    out: &Emitter<T>,
) -> Result<R, ProviderError> {
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            Some(item) = rx.recv() => out.send(item).await?,
        }
    };
    // The call is over; what it sent before returning is still owed to the caller.
    while let Ok(item) = rx.try_recv() {
        out.send(item).await?;
    }
    result
}

/// Timeouts, retries, circuit breaker and metrics of one provider.
#[derive(Clone)]
pub struct ProviderGuard {
    provider: Arc<str>,
    stage: Stage,
    config: ResilienceConfig,
    breaker: Arc<Mutex<Breaker>>,
    metrics: ProviderMetrics,
}

impl std::fmt::Debug for ProviderGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderGuard")
            .field("provider", &self.provider)
            .field("stage", &self.stage)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProviderGuard {
    /// A guard for `provider` (the `provider` label; unique per client instance) serving
    /// `stage`.
    pub fn new(
        provider: &str,
        stage: Stage,
        config: ResilienceConfig,
        metrics: ProviderMetrics,
    ) -> Self {
        metrics.circuit(provider, false);
        Self {
            provider: provider.into(),
            stage,
            breaker: Arc::new(Mutex::new(Breaker::new(
                config.breaker_failures,
                Duration::from_millis(config.breaker_cooldown_ms),
            ))),
            config,
            metrics,
        }
    }

    /// The provider label.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Its settings.
    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    /// True while the breaker refuses calls (or lets only a probe through).
    pub fn circuit_open(&self) -> bool {
        self.lock().is_open()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A call whose output streams to `out`; `attempt` is run once per attempt with an
    /// [`Emitter`] to send through. Retried only while nothing was emitted.
    pub async fn stream<O, T, F, Fut>(
        &self,
        out: &mpsc::Sender<O>,
        cancel: &CancellationToken,
        attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(Emitter<O>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.run(Some(out), cancel, attempt).await
    }

    /// A call without streamed output: the first-byte timeout bounds each attempt.
    pub async fn unary<T, F, Fut>(
        &self,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.run::<(), _, _, _>(None, cancel, |_| attempt()).await
    }

    async fn run<O, T, F, Fut>(
        &self,
        out: Option<&mpsc::Sender<O>>,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(Emitter<O>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let provider = &*self.provider;
        let stage = self.stage.as_str();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.total_timeout_ms);
        let first_byte = Duration::from_millis(self.config.first_byte_timeout_ms);
        let emitted = Emitted::new();
        let mut retry = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(ProviderError::Cancelled);
            }
            let admission = self.lock().admit(Instant::now());
            self.metrics.circuit(provider, self.circuit_open());
            if admission == Admission::Refused {
                self.metrics.attempt(provider, stage, "circuit_open");
                return Err(ProviderError::Unavailable(format!(
                    "{provider}: circuit breaker open"
                )));
            }
            let started = Instant::now();
            // A call without a stream has an emitter nobody sends to.
            let (sink, _unused) = match out {
                Some(out) => (out.clone(), None),
                None => {
                    let (tx, rx) = mpsc::channel(1);
                    (tx, Some(rx))
                }
            };
            let emitter = Emitter {
                out: sink,
                emitted: emitted.clone(),
                first: Some(FirstOutput {
                    metrics: self.metrics.clone(),
                    provider: self.provider.clone(),
                    stage: self.stage,
                    started,
                }),
            };
            let mut first_output = emitted.signal.subscribe();
            let first_byte_deadline = async {
                let output_came = tokio::select! {
                    () = tokio::time::sleep(first_byte) => false,
                    seen = first_output.wait_for(|e| *e) => seen.is_ok(),
                };
                if output_came {
                    std::future::pending::<()>().await;
                }
            };
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(Failure::from(ProviderError::Cancelled)),
                result = attempt(emitter) => result,
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(provider, stage, "provider call exceeded its total timeout");
                    Err(Failure::from(ProviderError::Timeout))
                }
                () = first_byte_deadline => {
                    tracing::warn!(provider, stage, "provider sent nothing before the first-byte timeout");
                    Err(Failure::from(ProviderError::Timeout))
                }
            };
            let now = Instant::now();
            let failure = match result {
                Ok(value) => {
                    self.lock().record(admission, Outcome::Success, now);
                    self.metrics.circuit(provider, self.circuit_open());
                    self.metrics.attempt(provider, stage, "ok");
                    if out.is_none() {
                        self.metrics
                            .first_output(provider, stage, started.elapsed());
                    }
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            self.lock()
                .record(admission, failure.breaker_outcome(), now);
            self.metrics.circuit(provider, self.circuit_open());
            self.metrics
                .attempt(provider, stage, failure.outcome_label());
            if !failure.retryable() || emitted.get() || retry >= self.config.max_retries {
                return Err(failure.error);
            }
            let wait = match failure.retry_after {
                Some(after) if after > Duration::from_millis(self.config.max_retry_after_ms) => {
                    tracing::warn!(
                        provider,
                        stage,
                        retry_after_ms = after.as_millis() as u64,
                        "provider asked to wait longer than max_retry_after_ms; giving up"
                    );
                    return Err(failure.error);
                }
                Some(after) => after,
                None => self.config.backoff(retry),
            };
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(failure.error);
            }
            tracing::info!(
                provider,
                stage,
                retry = retry + 1,
                wait_ms = wait.as_millis() as u64,
                error = %failure.error,
                "retrying provider call"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Err(ProviderError::Cancelled),
            }
            retry += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn config() -> ResilienceConfig {
        ResilienceConfig {
            first_byte_timeout_ms: 1_000,
            total_timeout_ms: 60_000,
            max_retries: 3,
            backoff_initial_ms: 100,
            backoff_max_ms: 400,
            breaker_failures: 0,
            ..ResilienceConfig::default()
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let c = config();
        for _ in 0..50 {
            let first = c.backoff(0).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = c.backoff(2).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            assert!(c.backoff(30).as_millis() <= 400);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_while_nothing_was_emitted() {
        let guard = ProviderGuard::new(
            "p",
            Stage::Answer,
            config(),
            ProviderMetrics::unregistered(),
        );
        let calls = AtomicU32::new(0);
        let (tx, mut rx) = mpsc::channel(8);
        let result = guard
            .stream(&tx, &CancellationToken::new(), |emit| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        return Err(Failure::from(ProviderError::Unavailable("503".into())));
                    }
                    emit.send("hello".to_owned()).await?;
                    Ok(n)
                }
            })
            .await;
        assert_eq!(result, Ok(2));
        assert_eq!(rx.recv().await.as_deref(), Some("hello"));
    }

    #[tokio::test(start_paused = true)]
    async fn never_retries_once_output_was_emitted() {
        let guard = ProviderGuard::new(
            "p",
            Stage::Answer,
            config(),
            ProviderMetrics::unregistered(),
        );
        let calls = AtomicU32::new(0);
        let (tx, _rx) = mpsc::channel(8);
        let result: Result<(), _> = guard
            .stream(&tx, &CancellationToken::new(), |emit| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    emit.send("partial".to_owned()).await?;
                    Err(Failure::from(ProviderError::Unavailable("dropped".into())))
                }
            })
            .await;
        assert_eq!(result, Err(ProviderError::Unavailable("dropped".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_gives_up_when_it_is_too_long() {
        let guard =
            ProviderGuard::new("p", Stage::Embed, config(), ProviderMetrics::unregistered());
        let start = tokio::time::Instant::now();
        let calls = AtomicU32::new(0);
        let result = guard
            .unary(&CancellationToken::new(), || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err(Failure::rate_limited(
                            "429".into(),
                            Some(Duration::from_secs(3)),
                        )),
                        _ => Ok(n),
                    }
                }
            })
            .await;
        assert_eq!(result, Ok(1));
        assert!(start.elapsed() >= Duration::from_secs(3));

        let result: Result<(), _> = guard
            .unary(&CancellationToken::new(), || async {
                Err(Failure::rate_limited(
                    "429".into(),
                    Some(Duration::from_secs(60)),
                ))
            })
            .await;
        assert_eq!(result, Err(ProviderError::Unavailable("429".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn first_byte_timeout_stops_a_silent_attempt_but_not_a_streaming_one() {
        let mut c = config();
        c.max_retries = 0;
        let guard = ProviderGuard::new("p", Stage::Tts, c, ProviderMetrics::unregistered());
        let (tx, _rx) = mpsc::channel(8);
        let silent: Result<(), _> = guard
            .stream(&tx, &CancellationToken::new(), |_emit| async {
                std::future::pending::<Result<(), Failure>>().await
            })
            .await;
        assert_eq!(silent, Err(ProviderError::Timeout));

        // Output at 0.5 s, then the call runs on past the 1 s first-byte timeout.
        let slow_but_streaming = guard
            .stream(&tx, &CancellationToken::new(), |emit| async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                emit.send("a".to_owned()).await?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(())
            })
            .await;
        assert_eq!(slow_but_streaming, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_call_and_the_backoff() {
        let guard = ProviderGuard::new("p", Stage::Stt, config(), ProviderMetrics::unregistered());
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        let result: Result<(), _> = guard
            .unary(&cancel, || {
                canceller.cancel();
                async { Err(Failure::from(ProviderError::Timeout)) }
            })
            .await;
        assert_eq!(result, Err(ProviderError::Cancelled));
    }
}
