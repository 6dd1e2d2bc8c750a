//! The shared Silero service: one dedicated thread gathers the ready windows of every live
//! stream and scores them in one model run. It takes whatever is queued, waits at most
//! `max_wait` after the first window for more (so a lone session's decision is late by no
//! more than that), and runs at most `max_batch` rows at once. Under load the windows that
//! arrive while a batch runs form the next one, so batches grow with the number of sessions
//! without any extra wait.
//!
//! The queue is bounded: a window that finds it full is not scored (the stream keeps its
//! last decision and counts it as `dropped`), so a stalled model cannot grow memory without
//! limit or block a session's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use tokio::sync::oneshot;

use super::model::{SileroModel, Window};

/// Windows waiting for the service before new ones are dropped (a few batches' worth).
const QUEUE: usize = 4096;

/// The VAD series: windows by outcome, and the size of each model run.
#[derive(Debug, Clone)]
pub struct VadMetrics {
    /// `outcome`: `scored` (by the model), `gated` (below the energy gate, not scored),
    /// `dropped` (queue full or model error: not scored).
    pub windows: IntCounterVec,
    /// Windows per model run.
    pub batch_size: Histogram,
}

impl VadMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let windows = IntCounterVec::new(
            Opts::new("vad_windows_total", "Silero VAD windows by outcome"),
            &["outcome"],
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("vad_batch_size", "Windows scored per Silero model run").buckets(
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
        )?;
        registry.register(Box::new(windows.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        Ok(Self {
            windows,
            batch_size,
        })
    }

    /// Series that are not exported anywhere (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("a fresh registry accepts the VAD series")
    }
}

struct Job {
    window: Box<Window>,
    reply: oneshot::Sender<Box<Window>>,
}

/// A handle to the service; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Batcher {
    jobs: SyncSender<Job>,
    largest: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the service thread with `model`.
    pub fn start(
        model: SileroModel,
        max_batch: usize,
        max_wait: Duration,
        metrics: VadMetrics,
    ) -> Result<Self, String> {
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let largest = Arc::new(AtomicUsize::new(0));
        let seen = largest.clone();
        std::thread::Builder::new()
            .name("silero-vad".into())
            .spawn(move || serve(model, &queue, max_batch.max(1), max_wait, &metrics, &seen))
            .map_err(|e| format!("starting the Silero VAD thread: {e}"))?;
        Ok(Self { jobs, largest })
    }

    /// Queues `window`; its scored self comes back on the receiver. `Err` gives the
    /// window back when the queue is full or the service has stopped.
    pub fn submit(
        &self,
        window: Box<Window>,
    ) -> Result<oneshot::Receiver<Box<Window>>, Box<Window>> {
        let (reply, scored) = oneshot::channel();
        match self.jobs.try_send(Job { window, reply }) {
            Ok(()) => Ok(scored),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(job.window),
        }
    }

    /// The largest batch run so far (tests and diagnostics).
    pub fn largest_batch(&self) -> usize {
        self.largest.load(Ordering::Relaxed)
    }
}

fn serve(
    mut model: SileroModel,
    queue: &mpsc::Receiver<Job>,
    max_batch: usize,
    max_wait: Duration,
    metrics: &VadMetrics,
    largest: &AtomicUsize,
) {
    let mut windows: Vec<Box<Window>> = Vec::with_capacity(max_batch);
    let mut replies: Vec<oneshot::Sender<Box<Window>>> = Vec::with_capacity(max_batch);
    // Blocks until a window arrives; ends when every stream and the factory are gone.
    while let Ok(first) = queue.recv() {
        let deadline = Instant::now() + max_wait;
        let mut take = |job: Job, windows: &mut Vec<Box<Window>>| {
            windows.push(job.window);
            replies.push(job.reply);
        };
        take(first, &mut windows);
        let mut open = true;
        while open && windows.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => take(job, &mut windows),
                Err(TryRecvError::Disconnected) => open = false,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match queue.recv_timeout(deadline - now) {
                        Ok(job) => take(job, &mut windows),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => open = false,
                    }
                }
            }
        }
        let n = windows.len();
        largest.fetch_max(n, Ordering::Relaxed);
        metrics.batch_size.observe(n as f64);
        match model.run(&mut windows) {
            Ok(()) => {
                metrics
                    .windows
                    .with_label_values(&["scored"])
                    .inc_by(n as u64);
                for (window, reply) in windows.drain(..).zip(replies.drain(..)) {
                    // A stream that stopped meanwhile no longer waits: nothing to do.
                    let _ = reply.send(window);
                }
            }
            Err(error) => {
                // Dropping the replies tells each stream its window was not scored.
                tracing::error!(%error, windows = n, "Silero VAD batch failed");
                metrics
                    .windows
                    .with_label_values(&["dropped"])
                    .inc_by(n as u64);
                windows.clear();
                replies.clear();
            }
        }
    }
}
