//! espeak-ng text to speech with word and phoneme timings.
//!
//! espeak-ng is GPL-3.0-or-later and Adam is Apache-2.0, so the synthesizer is never
//! linked into Adam: a small GPL program, `tools/espeak-worker` (built from
//! `tools/espeak-worker/espeak_worker.c`), links libespeak-ng and serves requests over
//! stdin/stdout. [`EspeakTts`] keeps a warm pool of those processes.
//!
//! # Worker protocol (version 1)
//!
//! All integers are little-endian.
//!
//! Requests (to the worker's stdin):
//! - `'S'`, u32 rate (words per minute), u32 voice length, u32 text length, the voice
//!   name, the UTF-8 text (raw: no SSML, no `[[phonemes]]`, any bytes allowed).
//! - `'C'`: cancel the request being synthesized; ignored when idle, so a late cancel is
//!   harmless.
//! - EOF: the worker exits.
//!
//! Replies (from its stdout) are frames `u8 type, u32 payload length, payload`:
//! - `'H'` u32 protocol version, u32 sample rate, the espeak-ng version: once, when ready.
//! - `'A'` PCM16 LE mono samples.
//! - `'W'` u32 text position (characters, from 1), u32 length, u32 audio ms: a word starts.
//! - `'P'` u32 audio ms, u32 text position, the phoneme mnemonic: a phoneme starts.
//! - `'E'` i32 status (0 ok, 1 cancelled, 2 unknown voice, 3 synthesis failed, 4 bad
//!   request), u32 total samples, a message: the request is over.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use adam_actors::ports::{
    BoxFuture, CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest, VisemeTiming,
    WordTiming,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Protocol version the worker must speak.
const PROTOCOL_VERSION: u32 = 1;
/// Longest text the worker accepts, bytes.
const MAX_TEXT_BYTES: usize = 1 << 20;
/// Longest voice name the worker accepts, bytes.
const MAX_VOICE_BYTES: usize = 256;
/// Unknown voice names remembered (so that they skip the round trip to the worker).
const MAX_BAD_VOICES: usize = 64;
/// Largest reply frame we accept (guards against a confused worker).
const MAX_FRAME_BYTES: usize = 16 << 20;
/// Audio is forwarded in chunks of at least this much.
const CHUNK_MS: u32 = 100;
/// How long a starting worker may take to say hello.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence from a busy worker before it is considered hung.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cancelled job may take to wind down before its worker is killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing a request may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the embedded espeak-ng voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EspeakConfig {
    /// The `espeak-worker` program (built from `tools/espeak-worker`; a bare name is
    /// looked up in `PATH`).
    pub binary: PathBuf,
    /// Worker processes kept warm; at most this many sentences are synthesized at once.
    pub workers: usize,
    /// espeak-ng voice used when a request asks for `default` or an unknown voice.
    pub voice: String,
    /// Speaking rate, words per minute (espeak-ng accepts 80–450).
    pub words_per_minute: u32,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("models/bin/espeak-worker"),
            workers: 2,
            voice: "en".into(),
            words_per_minute: 175,
        }
    }
}

/// espeak-ng text to speech over a warm pool of `espeak-worker` processes.
///
/// Each sentence goes to one free worker; audio is streamed in ~100 ms chunks as it is
/// synthesized, with word timings (and visemes from the phoneme timings) relative to
/// the start of the sentence's audio. A worker that dies is replaced; a cancelled job
/// is aborted in the worker (or the worker killed) before it serves the next request.
#[derive(Clone)]
pub struct EspeakTts {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for EspeakTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EspeakTts")
            .field("config", &self.pool.config)
            .finish_non_exhaustive()
    }
}

impl EspeakTts {
    /// Starts `config.workers` workers (at least one) and waits until they are ready.
    pub async fn new(config: EspeakConfig) -> Result<Self, ProviderError> {
        let workers = config.workers.max(1);
        let pool = Arc::new(Pool {
            permits: Arc::new(Semaphore::new(workers)),
            idle: Mutex::new(Vec::with_capacity(workers)),
            bad_voices: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(0),
            config,
        });
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let pool = pool.clone();
            starting.spawn(async move { pool.spawn_worker().await });
        }
        while let Some(started) = starting.join_next().await {
            let worker = started
                .map_err(|e| ProviderError::Unavailable(format!("espeak worker start: {e}")))??;
            pool.lock_idle().push(worker);
        }
        let sample_rate = pool.lock_idle().first().map_or(0, |w| w.sample_rate);
        tracing::info!(
            workers,
            sample_rate,
            voice = %pool.config.voice,
            binary = %pool.config.binary.display(),
            "espeak-ng workers ready"
        );
        Ok(Self { pool })
    }

    /// Checks that the worker program starts and speaks with the configured voice;
    /// returns a one-line description (version, sample rate, voice). Blocks for the
    /// few milliseconds that takes (up to a 10 s timeout).
    pub fn check(config: &EspeakConfig) -> Result<String, String> {
        check_blocking(config)
    }

    /// The espeak-ng voice for a request's voice name: the configured one for `default`,
    /// for names that do not look like espeak-ng voices (`en-us`, `en-us+f3`,
    /// `gmw/en-US`) and for names the worker did not know.
    fn voice_for(&self, requested: &str) -> String {
        let voice = requested.trim();
        let plausible = !voice.is_empty()
            && voice.len() <= MAX_VOICE_BYTES
            && !voice.starts_with('/')
            && !voice.contains("..")
            && voice
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+./".contains(c));
        let unusable = !plausible
            || voice.eq_ignore_ascii_case("default")
            || self.pool.lock_bad_voices().contains(voice);
        if unusable {
            self.pool.config.voice.clone()
        } else {
            voice.to_owned()
        }
    }

    async fn run(
        &self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> Result<(), ProviderError> {
        if cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        let text = request.text;
        if text.trim().is_empty() {
            return Ok(());
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ProviderError::Rejected(format!(
                "text too long for espeak-ng ({} bytes, at most {MAX_TEXT_BYTES})",
                text.len()
            )));
        }
        let mut voice = self.voice_for(&request.voice);
        let rate = self.pool.config.words_per_minute;
        let mut retried_worker = false;
        loop {
            let mut lease = self.pool.clone().acquire(&cancel).await?;
            let mut job = Job::new(&text, lease.sample_rate());
            let request = encode_request(&voice, rate, &text);
            match job.run(&mut lease, &request, &out, &cancel).await {
                Ok(()) => return Ok(()),
                Err(JobError::UnknownVoice) if voice != self.pool.config.voice => {
                    tracing::warn!(
                        voice = %voice,
                        fallback = %self.pool.config.voice,
                        "espeak-ng has no such voice; using the configured one"
                    );
                    let mut bad = self.pool.lock_bad_voices();
                    if bad.len() < MAX_BAD_VOICES {
                        bad.insert(voice);
                    }
                    drop(bad);
                    voice = self.pool.config.voice.clone();
                }
                Err(JobError::UnknownVoice) => {
                    return Err(ProviderError::Rejected(format!(
                        "espeak-ng has no voice {voice:?}"
                    )));
                }
                Err(JobError::WorkerLost(reason)) if !job.sent_any && !retried_worker => {
                    tracing::warn!(%reason, "espeak worker lost; retrying on a fresh one");
                    retried_worker = true;
                }
                Err(JobError::WorkerLost(reason)) => {
                    return Err(ProviderError::Unavailable(format!(
                        "espeak worker failed: {reason}"
                    )));
                }
                Err(JobError::Provider(error)) => return Err(error),
            }
        }
    }
}

impl TextToSpeech for EspeakTts {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.run(request, out, cancel))
    }
}

// ---------------------------------------------------------------------------------------
// Pool

struct Pool {
    config: EspeakConfig,
    /// One permit per worker slot: holding one entitles a job to one worker.
    permits: Arc<Semaphore>,
    /// Ready workers.
    idle: Mutex<Vec<Worker>>,
    /// Voices the worker did not know (requests for them use the configured voice).
    bad_voices: Mutex<HashSet<String>>,
    next_id: AtomicU64,
}

impl Pool {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_bad_voices(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.bad_voices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn spawn_worker(&self) -> Result<Worker, ProviderError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Worker::spawn(&self.config.binary, &self.config.voice, id).await
    }

    /// Waits for a free slot, then hands out an idle worker (or starts one).
    async fn acquire(self: Arc<Self>, cancel: &CancellationToken) -> Result<Lease, ProviderError> {
        let permit = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
            permit = self.permits.clone().acquire_owned() => permit
                .map_err(|_| ProviderError::Unavailable("espeak pool closed".into()))?,
        };
        loop {
            let candidate = self.lock_idle().pop();
            let Some(mut worker) = candidate else {
                break;
            };
            if worker.is_ready() {
                return Ok(Lease::new(self, worker, permit));
            }
            tracing::warn!(worker = worker.id, "espeak worker died while idle");
        }
        let worker = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
            worker = self.spawn_worker() => worker?,
        };
        Ok(Lease::new(self, worker, permit))
    }
}

/// What state a leased worker is in when the lease ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    /// Between requests: goes straight back to the pool.
    Idle,
    /// A request is in flight (cancelled or abandoned): abort it, drain, then return.
    Busy,
    /// Dead or confused: kill it and start a replacement.
    Broken,
}

/// A worker checked out of the pool, with its slot. Dropping it returns the worker
/// (after cleaning up an interrupted job, in the background) or replaces it.
struct Lease {
    pool: Arc<Pool>,
    worker: Option<Worker>,
    permit: Option<OwnedSemaphorePermit>,
    state: LeaseState,
}

impl Lease {
    fn new(pool: Arc<Pool>, worker: Worker, permit: OwnedSemaphorePermit) -> Self {
        Self {
            pool,
            worker: Some(worker),
            permit: Some(permit),
            state: LeaseState::Idle,
        }
    }

    fn sample_rate(&self) -> u32 {
        self.worker.as_ref().map_or(0, |w| w.sample_rate)
    }

    fn worker(&mut self) -> Result<&mut Worker, JobError> {
        self.worker
            .as_mut()
            .ok_or_else(|| JobError::WorkerLost("no worker".into()))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (Some(worker), Some(permit)) = (self.worker.take(), self.permit.take()) else {
            return;
        };
        let pool = self.pool.clone();
        match self.state {
            LeaseState::Idle => {
                pool.lock_idle().push(worker);
                drop(permit);
            }
            LeaseState::Busy | LeaseState::Broken => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return; // Shutting down: the worker is killed on drop.
                };
                let state = self.state;
                runtime.spawn(async move {
                    let worker = match state {
                        LeaseState::Busy => worker.abort_job().await,
                        _ => {
                            drop(worker);
                            None
                        }
                    };
                    let worker = match worker {
                        Some(worker) => Some(worker),
                        None => match pool.spawn_worker().await {
                            Ok(worker) => Some(worker),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not replace an espeak worker");
                                None
                            }
                        },
                    };
                    if let Some(worker) = worker {
                        pool.lock_idle().push(worker);
                    }
                    drop(permit);
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// One worker process

struct Worker {
    id: u64,
    child: Child,
    stdin: ChildStdin,
    frames: mpsc::Receiver<Result<Frame, String>>,
    sample_rate: u32,
}

impl Worker {
    /// Starts `binary`, preloading `voice`, and waits for its hello.
    async fn spawn(binary: &Path, voice: &str, id: u64) -> Result<Self, ProviderError> {
        let unavailable =
            |what: String| ProviderError::Unavailable(format!("{}: {what}", binary.display()));
        let mut child = Command::new(binary)
            .arg(voice)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| unavailable(format!("cannot start espeak worker: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(unavailable("espeak worker has no pipes".into()));
        };
        let (tx, mut frames) = mpsc::channel(64);
        tokio::spawn(read_frames(stdout, tx));
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(worker = id, "espeak-worker: {line}");
            }
        });
        let hello = tokio::time::timeout(STARTUP_TIMEOUT, frames.recv()).await;
        let sample_rate = match hello {
            Ok(Some(Ok(Frame::Hello {
                protocol,
                sample_rate,
                version,
            }))) => {
                if protocol != PROTOCOL_VERSION {
                    return Err(unavailable(format!(
                        "espeak worker speaks protocol {protocol}, expected {PROTOCOL_VERSION}"
                    )));
                }
                if sample_rate == 0 {
                    return Err(unavailable("espeak worker reported no sample rate".into()));
                }
                tracing::debug!(worker = id, %version, sample_rate, "espeak worker started");
                sample_rate
            }
            Ok(Some(Ok(other))) => {
                return Err(unavailable(format!(
                    "espeak worker sent {other:?} before its hello"
                )));
            }
            Ok(Some(Err(e))) => return Err(unavailable(e)),
            Ok(None) => {
                let status = child.wait().await.map(|s| s.to_string());
                return Err(unavailable(format!(
                    "espeak worker exited at start-up ({})",
                    status.unwrap_or_else(|e| e.to_string())
                )));
            }
            Err(_) => return Err(unavailable("espeak worker did not start in time".into())),
        };
        Ok(Self {
            id,
            child,
            stdin,
            frames,
            sample_rate,
        })
    }

    /// Alive, and nothing unread from an earlier job.
    fn is_ready(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.frames.is_empty()
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let write = async {
            self.stdin.write_all(bytes).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing to the worker: {e}")),
            Err(_) => Err("writing to the worker timed out".into()),
        }
    }

    /// Aborts the job in flight and reads its remaining frames; `None` when the worker
    /// did not come back to a clean state in time (it is then killed by the drop).
    async fn abort_job(mut self) -> Option<Self> {
        if self.send(b"C").await.is_err() {
            return None;
        }
        let drain = async {
            loop {
                match self.frames.recv().await {
                    Some(Ok(Frame::End { .. })) => return true,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return false,
                }
            }
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
            Ok(true) => {
                tracing::debug!(worker = self.id, "espeak job aborted");
                Some(self)
            }
            _ => {
                tracing::warn!(worker = self.id, "espeak worker did not abort; killing it");
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// One synthesis job

enum JobError {
    /// The worker does not know the voice (the worker itself is fine).
    UnknownVoice,
    /// The worker died or broke the protocol.
    WorkerLost(String),
    /// Cancelled, timed out, rejected, failed.
    Provider(ProviderError),
}

struct Job {
    timeline: Timeline,
    sample_rate: u32,
    chunk_samples: usize,
    pending: Vec<i16>,
    sent_samples: u64,
    /// Some audio reached `out` (so the request must not be retried).
    sent_any: bool,
}

impl Job {
    fn new(text: &str, sample_rate: u32) -> Self {
        Self {
            timeline: Timeline::new(text),
            sample_rate,
            chunk_samples: (sample_rate as usize * CHUNK_MS as usize / 1000).max(1),
            pending: Vec::new(),
            sent_samples: 0,
            sent_any: false,
        }
    }

    async fn run(
        &mut self,
        lease: &mut Lease,
        request: &[u8],
        out: &mpsc::Sender<TtsChunk>,
        cancel: &CancellationToken,
    ) -> Result<(), JobError> {
        // Dropped halfway through the write, the worker would be out of step: kill it.
        lease.state = LeaseState::Broken;
        if let Err(e) = lease.worker()?.send(request).await {
            return Err(JobError::WorkerLost(e));
        }
        lease.state = LeaseState::Busy;
        loop {
            let worker = lease.worker()?;
            let id = worker.id;
            let frame = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(JobError::Provider(ProviderError::Cancelled)),
                frame = tokio::time::timeout(FRAME_TIMEOUT, worker.frames.recv()) => frame,
            };
            let frame = match frame {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) => {
                    lease.state = LeaseState::Broken;
                    return Err(JobError::WorkerLost(e));
                }
                Ok(None) => {
                    lease.state = LeaseState::Broken;
                    return Err(JobError::WorkerLost("the worker exited".into()));
                }
                Err(_) => {
                    lease.state = LeaseState::Broken;
                    tracing::warn!(worker = id, "espeak worker hung; killing it");
                    return Err(JobError::Provider(ProviderError::Timeout));
                }
            };
            match frame {
                Frame::Audio(samples) => {
                    self.pending.extend_from_slice(&samples);
                    if self.pending.len() >= self.chunk_samples {
                        self.flush(None, out, cancel).await?;
                    }
                }
                Frame::Word {
                    text_position,
                    audio_ms,
                } => self.timeline.word(text_position, audio_ms),
                Frame::Phoneme { audio_ms, name } => self.timeline.phoneme(audio_ms, name),
                Frame::End {
                    status,
                    total_samples,
                    message,
                } => {
                    lease.state = LeaseState::Idle;
                    return match status {
                        0 => {
                            let received = self.sent_samples + self.pending.len() as u64;
                            if received != u64::from(total_samples) {
                                tracing::debug!(
                                    received,
                                    total_samples,
                                    "espeak sample count mismatch"
                                );
                            }
                            let total_ms = samples_to_ms(received, self.sample_rate);
                            self.flush(Some(total_ms), out, cancel).await
                        }
                        2 => Err(JobError::UnknownVoice),
                        4 => Err(JobError::Provider(ProviderError::Rejected(message))),
                        1 => Err(JobError::WorkerLost(
                            "the worker cancelled a job nobody cancelled".into(),
                        )),
                        _ => Err(JobError::Provider(ProviderError::Unavailable(format!(
                            "espeak-ng failed (status {status}): {message}"
                        )))),
                    };
                }
                Frame::Hello { .. } => {
                    lease.state = LeaseState::Broken;
                    return Err(JobError::WorkerLost("unexpected hello".into()));
                }
            }
        }
    }

    /// Sends the pending audio with the words it completes; `total_ms` at the end.
    async fn flush(
        &mut self,
        total_ms: Option<u32>,
        out: &mpsc::Sender<TtsChunk>,
        cancel: &CancellationToken,
    ) -> Result<(), JobError> {
        let samples = std::mem::take(&mut self.pending);
        let delivered = self.sent_samples + samples.len() as u64;
        let words = match total_ms {
            Some(total) => self.timeline.finish(total),
            None => self
                .timeline
                .ready(samples_to_ms(delivered, self.sample_rate)),
        };
        if samples.is_empty() && words.is_empty() {
            return Ok(());
        }
        let chunk = TtsChunk {
            samples,
            sample_rate: self.sample_rate,
            words,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(JobError::Provider(ProviderError::Cancelled)),
            sent = out.send(chunk) => sent
                .map_err(|_| JobError::Provider(ProviderError::Cancelled))?,
        }
        self.sent_samples = delivered;
        self.sent_any = true;
        Ok(())
    }
}

fn samples_to_ms(samples: u64, sample_rate: u32) -> u32 {
    if sample_rate == 0 {
        return 0;
    }
    u32::try_from(samples * 1000 / u64::from(sample_rate)).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------
// Word and viseme timings

/// A whitespace-separated token of the request text: where it ends (in characters) and
/// the word as written, without surrounding punctuation.
#[derive(Debug)]
struct Token {
    end: usize,
    word: String,
}

impl Token {
    fn new(end: usize, raw: &str) -> Self {
        let trimmed = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let word = if trimmed.is_empty() { raw } else { trimmed };
        Self {
            end,
            word: word.to_owned(),
        }
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for (i, c) in text.chars().enumerate() {
        count = i + 1;
        if c.is_whitespace() || c == '\0' {
            if !current.is_empty() {
                tokens.push(Token::new(i, &std::mem::take(&mut current)));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push(Token::new(count, &current));
    }
    tokens
}

/// Collects the worker's word and phoneme events of one sentence and turns them into
/// [`WordTiming`]s. Several spoken words of one written token (`42` → "forty two",
/// `bob@example.com`) become one timing for the token.
struct Timeline {
    tokens: Vec<Token>,
    /// (token index, start ms) of each word, in order.
    words: Vec<(usize, u32)>,
    /// (start ms, mnemonic) of each phoneme, in order.
    phonemes: Vec<(u32, String)>,
    /// Words already handed out.
    emitted: usize,
}

impl Timeline {
    fn new(text: &str) -> Self {
        Self {
            tokens: tokenize(text),
            words: Vec::new(),
            phonemes: Vec::new(),
            emitted: 0,
        }
    }

    /// The token holding character `index` (or the next one, or the last).
    fn token_at(&self, index: usize) -> Option<usize> {
        let next = self.tokens.partition_point(|t| t.end <= index);
        if next < self.tokens.len() {
            Some(next)
        } else {
            self.tokens.len().checked_sub(1)
        }
    }

    fn word(&mut self, text_position: u32, audio_ms: u32) {
        let Some(token) = self.token_at(text_position.saturating_sub(1) as usize) else {
            return;
        };
        let start = match self.words.last() {
            Some(&(last, _)) if token <= last => return,
            Some(&(_, last_start)) => audio_ms.max(last_start),
            None => audio_ms,
        };
        self.words.push((token, start));
    }

    fn phoneme(&mut self, audio_ms: u32, name: String) {
        let at = self.phonemes.last().map_or(audio_ms, |p| audio_ms.max(p.0));
        self.phonemes.push((at, name));
    }

    /// Words whose timing is settled and whose audio lies within the first
    /// `delivered_ms` of the sentence.
    fn ready(&mut self, delivered_ms: u32) -> Vec<WordTiming> {
        let mut out = Vec::new();
        while self.emitted + 1 < self.words.len() {
            match self.timing(self.emitted, u32::MAX) {
                Some(word) if word.end_ms > delivered_ms => break,
                Some(word) => out.push(word),
                None => {}
            }
            self.emitted += 1;
        }
        out
    }

    /// All remaining words, clipped to the sentence's `total_ms` of audio.
    fn finish(&mut self, total_ms: u32) -> Vec<WordTiming> {
        let out = (self.emitted..self.words.len())
            .filter_map(|i| self.timing(i, total_ms))
            .collect();
        self.emitted = self.words.len();
        out
    }

    /// Word `i`: from its start to the end of its last sounding phoneme (or to the next
    /// word), its visemes from the phonemes in between; `None` if it has no duration.
    fn timing(&self, i: usize, limit_ms: u32) -> Option<WordTiming> {
        let &(token, start) = self.words.get(i)?;
        let boundary = self
            .words
            .get(i + 1)
            .map_or(limit_ms, |w| w.1)
            .min(limit_ms);
        let first = self.phonemes.partition_point(|p| p.0 < start);
        let last = self.phonemes.partition_point(|p| p.0 < boundary);
        let phoneme_end = |k: usize| {
            self.phonemes
                .get(k + 1)
                .map_or(boundary, |p| p.0.min(boundary))
        };
        let first_sound = (first..last).find(|&k| !is_pause(&self.phonemes[k].1));
        let last_sound = (first..last)
            .rev()
            .find(|&k| !is_pause(&self.phonemes[k].1));
        let end = last_sound.map_or(boundary, phoneme_end);
        if end <= start {
            return None;
        }
        let mut visemes = VisemeTrack::default();
        if let (Some(a), Some(b)) = (first_sound, last_sound) {
            for k in a..=b {
                let (at, name) = &self.phonemes[k];
                visemes.add(name, (*at).max(start), phoneme_end(k).min(end));
            }
        }
        Some(WordTiming {
            word: self.tokens.get(token)?.word.clone(),
            start_ms: start,
            end_ms: end,
            visemes: visemes.finish(),
        })
    }
}

/// Builds one word's viseme list, merging repeats; phonemes without a mouth shape of
/// their own (`h`, stress marks) take the shape of their neighbours.
#[derive(Default)]
struct VisemeTrack {
    visemes: Vec<VisemeTiming>,
    /// Start of shapeless phonemes at the start of the word, given to the next shape.
    carry_from: Option<u32>,
}

impl VisemeTrack {
    fn add(&mut self, phoneme: &str, start: u32, end: u32) {
        if end <= start {
            return;
        }
        let shapes = visemes_for_phoneme(phoneme);
        if shapes.is_empty() {
            match self.visemes.last_mut() {
                Some(last) => last.end_ms = end,
                None => {
                    self.carry_from.get_or_insert(start);
                }
            }
            return;
        }
        let start = self.carry_from.take().unwrap_or(start);
        let n = shapes.len() as u32;
        for (i, shape) in (0u32..).zip(shapes) {
            let a = start + (end - start) * i / n;
            let b = start + (end - start) * (i + 1) / n;
            self.push(shape, a, b);
        }
    }

    fn push(&mut self, viseme: &str, start: u32, end: u32) {
        if end <= start {
            return;
        }
        match self.visemes.last_mut() {
            Some(last) if last.viseme == viseme => last.end_ms = end,
            _ => self.visemes.push(VisemeTiming {
                viseme: viseme.to_owned(),
                start_ms: start,
                end_ms: end,
            }),
        }
    }

    fn finish(self) -> Vec<VisemeTiming> {
        self.visemes
    }
}

/// espeak-ng pause "phonemes" (`_`, `_:`, `_!`, …).
fn is_pause(phoneme: &str) -> bool {
    phoneme.starts_with('_')
}

/// The Oculus visemes of an espeak-ng phoneme mnemonic: one, two for a diphthong (each
/// half of its time), none for marks without a mouth shape of their own.
fn visemes_for_phoneme(phoneme: &str) -> &'static [&'static str] {
    match phoneme {
        p if is_pause(p) => &["sil"],
        "aI" | "aI@" | "aI3" | "aI;" => &["aa", "ih"],
        "aU" | "aU@" => &["aa", "ou"],
        "eI" | "eI@" => &["E", "ih"],
        "oU" | "o@U" => &["oh", "ou"],
        "OI" | "OI@" => &["oh", "ih"],
        "@L" => &["E", "nn"],
        "tS" | "dZ" | "S" | "Z" | "C" | "S;" | "Z;" => &["CH"],
        "3" | "3:" | "3:r" | "@r" | "r-" => &["RR"],
        "A@" | "A:" | "aa" | "a#" | "V" => &["aa"],
        "o@" | "O@" | "O:" | "O2" => &["oh"],
        _ => match phoneme.chars().next() {
            Some('p' | 'b' | 'm') => &["PP"],
            Some('f' | 'v') => &["FF"],
            Some('T' | 'D') => &["TH"],
            Some('t' | 'd') => &["DD"],
            Some('k' | 'g' | 'N' | 'x' | 'q' | 'G' | 'X' | 'c') => &["kk"],
            Some('s' | 'z') => &["SS"],
            Some('n' | 'l' | 'L' | 'J') => &["nn"],
            Some('r' | 'R') => &["RR"],
            Some('a' | 'A' | '&') => &["aa"],
            Some('e' | 'E' | '@') => &["E"],
            Some('i' | 'I' | 'y' | 'Y' | 'j') => &["ih"],
            Some('o' | 'O' | '0' | 'Q') => &["oh"],
            Some('u' | 'U' | 'w' | 'W') => &["ou"],
            _ => &[],
        },
    }
}

// ---------------------------------------------------------------------------------------
// Wire format

/// A reply frame from the worker.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Hello {
        protocol: u32,
        sample_rate: u32,
        version: String,
    },
    Audio(Vec<i16>),
    Word {
        text_position: u32,
        audio_ms: u32,
    },
    Phoneme {
        audio_ms: u32,
        name: String,
    },
    End {
        status: i32,
        total_samples: u32,
        message: String,
    },
}

fn u32_at(payload: &[u8], at: usize) -> Result<u32, String> {
    payload
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| "short frame".to_owned())
}

fn text_from(payload: &[u8], at: usize) -> String {
    String::from_utf8_lossy(payload.get(at..).unwrap_or_default()).into_owned()
}

impl Frame {
    fn decode(kind: u8, payload: &[u8]) -> Result<Self, String> {
        Ok(match kind {
            b'H' => Self::Hello {
                protocol: u32_at(payload, 0)?,
                sample_rate: u32_at(payload, 4)?,
                version: text_from(payload, 8),
            },
            b'A' => Self::Audio(
                adam_actors::audio::pcm16_from_le_bytes(payload)
                    .ok_or_else(|| "odd audio frame".to_owned())?,
            ),
            b'W' => Self::Word {
                text_position: u32_at(payload, 0)?,
                audio_ms: u32_at(payload, 8)?,
            },
            b'P' => Self::Phoneme {
                audio_ms: u32_at(payload, 0)?,
                name: text_from(payload, 8),
            },
            b'E' => Self::End {
                status: u32_at(payload, 0)?.cast_signed(),
                total_samples: u32_at(payload, 4)?,
                message: text_from(payload, 8),
            },
            other => return Err(format!("unknown frame type 0x{other:02x}")),
        })
    }
}

fn frame_len(header: [u8; 5]) -> Result<usize, String> {
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(format!("frame of {len} bytes"));
    }
    Ok(len)
}

/// Reads one frame; `Ok(None)` at end of stream.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Frame>, String> {
    let mut header = [0u8; 5];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let mut payload = vec![0u8; frame_len(header)?];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading a frame: {e}"))?;
    Frame::decode(header[0], &payload).map(Some)
}

fn read_frame_blocking<R: Read>(reader: &mut R) -> Result<Option<Frame>, String> {
    let mut header = [0u8; 5];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let mut payload = vec![0u8; frame_len(header)?];
    reader
        .read_exact(&mut payload)
        .map_err(|e| format!("reading a frame: {e}"))?;
    Frame::decode(header[0], &payload).map(Some)
}

/// Forwards the worker's frames until its stdout closes (or nobody listens).
async fn read_frames(stdout: ChildStdout, tx: mpsc::Sender<Result<Frame, String>>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    loop {
        match read_frame(&mut reader).await {
            Ok(Some(frame)) => {
                if tx.send(Ok(frame)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

fn encode_request(voice: &str, rate: u32, text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(13 + voice.len() + text.len());
    bytes.push(b'S');
    bytes.extend_from_slice(&rate.to_le_bytes());
    for len in [voice.len(), text.len()] {
        bytes.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    }
    bytes.extend_from_slice(voice.as_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

// ---------------------------------------------------------------------------------------
// `adam models check`

fn check_blocking(config: &EspeakConfig) -> Result<String, String> {
    let binary = config.binary.display().to_string();
    let mut child = std::process::Command::new(&config.binary)
        .arg(&config.voice)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        return Err(format!("{binary}: no pipes"));
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut result = || -> Result<(u32, String, u32), String> {
            let (rate, version) = match read_frame_blocking(&mut stdout)? {
                Some(Frame::Hello {
                    protocol: PROTOCOL_VERSION,
                    sample_rate,
                    version,
                }) => (sample_rate, version),
                Some(Frame::Hello { protocol, .. }) => {
                    return Err(format!(
                        "speaks protocol {protocol}, not {PROTOCOL_VERSION}"
                    ));
                }
                other => return Err(format!("no hello from the worker ({other:?})")),
            };
            loop {
                match read_frame_blocking(&mut stdout)? {
                    Some(Frame::End {
                        status: 0,
                        total_samples,
                        ..
                    }) => return Ok((rate, version, total_samples)),
                    Some(Frame::End {
                        status, message, ..
                    }) => return Err(format!("test sentence failed ({status}: {message})")),
                    Some(_) => {}
                    None => return Err("the worker exited".into()),
                }
            }
        };
        let _ = tx.send(result());
    });
    let rate = config.words_per_minute;
    let request = encode_request(&config.voice, rate, "Ready.");
    // A failed write shows up as the worker's exit below. stdin stays open until the
    // answer is in: the worker aborts a request when its stdin closes.
    let _ = std::io::Write::write_all(&mut stdin, &request);
    let outcome = match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(_) => Err("no answer within 10 s".into()),
    };
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let mut errors = String::new();
    let _ = stderr.read_to_string(&mut errors);
    let errors = errors.trim();
    match outcome {
        Ok((sample_rate, version, samples)) => Ok(format!(
            "espeak-ng {version} via {binary}: voice {}, {sample_rate} Hz, {} ms test sentence",
            config.voice,
            samples_to_ms(u64::from(samples), sample_rate)
        )),
        Err(e) if errors.is_empty() => Err(format!("{binary}: {e}")),
        Err(e) => Err(format!("{binary}: {e} ({errors})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const SENTENCE: &str = "Our service department opens at eight on Saturday.";
    const VISEMES: [&str; 15] = [
        "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
    ];

    fn worker_binary() -> Option<PathBuf> {
        match std::env::var_os("ADAM_ESPEAK_WORKER") {
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => {
                eprintln!("skipping: set ADAM_ESPEAK_WORKER to the espeak-worker binary");
                None
            }
        }
    }

    fn config(binary: PathBuf, workers: usize) -> EspeakConfig {
        EspeakConfig {
            binary,
            workers,
            ..EspeakConfig::default()
        }
    }

    fn request(text: &str) -> TtsRequest {
        TtsRequest {
            text: text.into(),
            voice: "default".into(),
        }
    }

    struct Spoken {
        samples: Vec<i16>,
        sample_rate: u32,
        words: Vec<WordTiming>,
        chunks: usize,
        first_audio: Option<Duration>,
        elapsed: Duration,
    }

    impl Spoken {
        fn duration_ms(&self) -> f64 {
            self.samples.len() as f64 * 1000.0 / f64::from(self.sample_rate)
        }
    }

    async fn speak(tts: &EspeakTts, text: &str) -> Spoken {
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel(8);
        let tts2 = tts.clone();
        let req = request(text);
        let job =
            tokio::spawn(async move { tts2.synthesize(req, tx, CancellationToken::new()).await });
        let mut spoken = Spoken {
            samples: Vec::new(),
            sample_rate: 0,
            words: Vec::new(),
            chunks: 0,
            first_audio: None,
            elapsed: Duration::ZERO,
        };
        while let Some(chunk) = rx.recv().await {
            if !chunk.samples.is_empty() && spoken.first_audio.is_none() {
                spoken.first_audio = Some(started.elapsed());
            }
            spoken.chunks += 1;
            spoken.sample_rate = chunk.sample_rate;
            spoken.samples.extend(chunk.samples);
            spoken.words.extend(chunk.words);
        }
        job.await.expect("join").expect("synthesis");
        spoken.elapsed = started.elapsed();
        spoken
    }

    fn assert_sentence(spoken: &Spoken) {
        assert_eq!(spoken.sample_rate, 22050);
        assert!(!spoken.samples.is_empty());
        assert!(
            spoken.samples.iter().any(|&s| s.unsigned_abs() > 1000),
            "not silent"
        );
        let duration = spoken.duration_ms();
        assert!(
            (1000.0..6000.0).contains(&duration),
            "duration {duration} ms"
        );
        let words: Vec<&str> = spoken.words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(
            words,
            [
                "Our",
                "service",
                "department",
                "opens",
                "at",
                "eight",
                "on",
                "Saturday"
            ]
        );
        let mut previous_end = 0;
        for w in &spoken.words {
            assert!(w.start_ms < w.end_ms, "{w:?}");
            assert!(
                f64::from(w.end_ms) <= duration,
                "{w:?} beyond {duration} ms"
            );
            assert!(
                w.start_ms >= previous_end,
                "{w:?} overlaps the previous word"
            );
            previous_end = w.end_ms;
            assert!(!w.visemes.is_empty(), "{w:?} has no visemes");
            for v in &w.visemes {
                assert!(VISEMES.contains(&v.viseme.as_str()), "{v:?}");
                assert!(v.start_ms < v.end_ms, "{v:?}");
                assert!(
                    v.start_ms >= w.start_ms && v.end_ms <= w.end_ms,
                    "{v:?} in {w:?}"
                );
            }
        }
        assert_eq!(
            spoken.words[1].visemes[0].viseme, "SS",
            "service starts with s"
        );
        assert_eq!(
            spoken.words[2].visemes[0].viseme, "DD",
            "department starts with d"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn speaks_a_sentence_with_word_and_viseme_timings() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let tts = EspeakTts::new(config(binary, 1)).await.expect("start");
        let spoken = speak(&tts, SENTENCE).await;
        assert_sentence(&spoken);
        eprintln!(
            "first request: {:.0} ms of audio in {:.1} ms, first audio after {:.1} ms",
            spoken.duration_ms(),
            spoken.elapsed.as_secs_f64() * 1000.0,
            spoken.first_audio.unwrap_or_default().as_secs_f64() * 1000.0
        );
        assert!(
            spoken.chunks > 3,
            "streamed in chunks, got {}",
            spoken.chunks
        );
        for w in &spoken.words {
            let shapes: Vec<&str> = w.visemes.iter().map(|v| v.viseme.as_str()).collect();
            eprintln!(
                "{:>4}-{:>4} {:<11} {shapes:?}",
                w.start_ms, w.end_ms, w.word
            );
        }
        // Warm measurements (the first request also loads the voice).
        let mut best_first = Duration::MAX;
        let mut total_audio = 0.0;
        let mut total_time = Duration::ZERO;
        for _ in 0..5 {
            let spoken = speak(&tts, SENTENCE).await;
            assert_sentence(&spoken);
            best_first = best_first.min(spoken.first_audio.unwrap_or(Duration::MAX));
            total_audio += spoken.duration_ms();
            total_time += spoken.elapsed;
        }
        eprintln!(
            "espeak-ng: {:.0}x real time, first audio after {:.1} ms (best of 5)",
            total_audio / 1000.0 / total_time.as_secs_f64(),
            best_first.as_secs_f64() * 1000.0
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn odd_text_and_unknown_voice() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let tts = EspeakTts::new(config(binary, 1)).await.expect("start");
        let text = "He said \"42\" —\nthen 'left'\u{0}; <b>bold</b> [[a]] café 😀 bob@example.com";
        let spoken = speak(&tts, text).await;
        assert!(!spoken.samples.is_empty());
        let duration = spoken.duration_ms();
        for w in &spoken.words {
            assert!(
                w.start_ms < w.end_ms && f64::from(w.end_ms) <= duration,
                "{w:?}"
            );
        }
        let words: Vec<&str> = spoken.words.iter().map(|w| w.word.as_str()).collect();
        assert!(
            words.contains(&"42") && words.contains(&"café"),
            "{words:?}"
        );
        assert!(words.contains(&"bob@example.com"), "{words:?}");

        let (tx, mut rx) = mpsc::channel(64);
        let req = TtsRequest {
            text: "Hello there.".into(),
            voice: "alloy".into(),
        };
        tts.synthesize(req, tx, CancellationToken::new())
            .await
            .expect("falls back to the configured voice");
        let mut samples = 0;
        while let Some(chunk) = rx.recv().await {
            samples += chunk.samples.len();
        }
        assert!(samples > 0);
        assert!(tts.pool.lock_bad_voices().contains("alloy"));

        let (tx, _rx) = mpsc::channel(64);
        tts.synthesize(request("  \n "), tx, CancellationToken::new())
            .await
            .expect("blank text is fine");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cancellation_is_prompt_and_leaves_the_worker_clean() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let tts = EspeakTts::new(config(binary, 1)).await.expect("start");
        let worker_id = || tts.pool.lock_idle().first().map(|w| w.id);
        let original = worker_id();
        assert!(original.is_some());
        let long = [SENTENCE; 40].join(" ");
        for text in [SENTENCE.to_owned(), long] {
            let (tx, mut rx) = mpsc::channel(1);
            let cancel = CancellationToken::new();
            let job = {
                let tts = tts.clone();
                let cancel = cancel.clone();
                let req = request(&text);
                tokio::spawn(async move { tts.synthesize(req, tx, cancel).await })
            };
            let first = rx.recv().await.expect("first chunk");
            assert!(!first.samples.is_empty());
            let cancelled_at = Instant::now();
            cancel.cancel();
            let result = tokio::time::timeout(Duration::from_millis(500), job)
                .await
                .expect("returns promptly")
                .expect("join");
            assert_eq!(result, Err(ProviderError::Cancelled));
            eprintln!("cancel returned after {:?}", cancelled_at.elapsed());

            // The same (only) worker, drained rather than killed, serves the next
            // request, unpolluted.
            let spoken = speak(&tts, SENTENCE).await;
            assert_sentence(&spoken);
            assert_eq!(worker_id(), original, "the worker was reused");
        }

        // Cancelled before it starts.
        let cancel = CancellationToken::new();
        cancel.cancel();
        let (tx, _rx) = mpsc::channel(1);
        let result = tts.synthesize(request(SENTENCE), tx, cancel).await;
        assert_eq!(result, Err(ProviderError::Cancelled));

        // A dropped receiver ends the job like a cancel.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let result = tts
            .synthesize(request(SENTENCE), tx, CancellationToken::new())
            .await;
        assert_eq!(result, Err(ProviderError::Cancelled));
        assert_sentence(&speak(&tts, SENTENCE).await);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_requests_share_the_pool() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let tts = EspeakTts::new(config(binary, 2)).await.expect("start");
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let tts = tts.clone();
            jobs.spawn(async move { speak(&tts, SENTENCE).await });
        }
        let mut done = 0;
        while let Some(spoken) = jobs.join_next().await {
            assert_sentence(&spoken.expect("join"));
            done += 1;
        }
        assert_eq!(done, 4);
        assert!(tts.pool.lock_idle().len() <= 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_worker_is_replaced() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let tts = EspeakTts::new(config(binary, 1)).await.expect("start");
        let pid = tts.pool.lock_idle()[0].child.id().expect("pid");
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_sentence(&speak(&tts, SENTENCE).await);
    }

    #[test]
    fn check_reports_the_worker() {
        let Some(binary) = worker_binary() else {
            return;
        };
        let report = EspeakTts::check(&config(binary.clone(), 1)).expect("check");
        assert!(report.contains("22050 Hz"), "{report}");
        let missing = config(PathBuf::from("/nonexistent/espeak-worker"), 1);
        assert!(EspeakTts::check(&missing).is_err());
        let bad_voice = EspeakConfig {
            voice: "no-such-voice".into(),
            ..config(binary, 1)
        };
        assert!(EspeakTts::check(&bad_voice).is_err());
    }

    #[tokio::test]
    async fn missing_binary_is_unavailable() {
        let result = EspeakTts::new(config(PathBuf::from("/nonexistent/espeak-worker"), 1)).await;
        assert!(matches!(result, Err(ProviderError::Unavailable(_))));
    }

    #[test]
    fn frames_round_trip() {
        let request = encode_request("en-us", 175, "héllo");
        assert_eq!(request[0], b'S');
        assert_eq!(u32_at(&request, 1), Ok(175));
        assert_eq!(u32_at(&request, 5), Ok(5));
        assert_eq!(u32_at(&request, 9), Ok(6));
        assert_eq!(&request[13..18], b"en-us");

        let mut stream = Vec::new();
        let mut frame = |kind: u8, payload: &[u8]| {
            stream.push(kind);
            stream.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            stream.extend_from_slice(payload);
        };
        frame(b'H', &[1, 0, 0, 0, 0x22, 0x56, 0, 0, b'1']);
        frame(b'A', &[1, 0, 0xff, 0xff]);
        frame(b'P', &[5, 0, 0, 0, 1, 0, 0, 0, b'a', b'I']);
        frame(b'E', &[1, 0, 0, 0, 2, 0, 0, 0]);
        let mut reader = stream.as_slice();
        let mut frames = Vec::new();
        while let Some(f) = read_frame_blocking(&mut reader).expect("frame") {
            frames.push(f);
        }
        assert_eq!(
            frames,
            [
                Frame::Hello {
                    protocol: 1,
                    sample_rate: 22050,
                    version: "1".into()
                },
                Frame::Audio(vec![1, -1]),
                Frame::Phoneme {
                    audio_ms: 5,
                    name: "aI".into()
                },
                Frame::End {
                    status: 1,
                    total_samples: 2,
                    message: String::new()
                },
            ]
        );
        assert!(Frame::decode(b'A', &[1]).is_err());
        assert!(Frame::decode(b'W', &[1, 2]).is_err());
        assert!(Frame::decode(b'?', &[]).is_err());
    }

    #[test]
    fn tokens_map_positions_to_written_words() {
        let t = Timeline::new("Héllo “quoted”  42,\nbob@example.com.");
        let words: Vec<&str> = t.tokens.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(words, ["Héllo", "quoted", "42", "bob@example.com"]);
        assert_eq!(t.token_at(0), Some(0));
        assert_eq!(t.token_at(5), Some(1), "a space belongs to the next word");
        assert_eq!(t.token_at(7), Some(1));
        assert_eq!(t.token_at(100), Some(3));
        assert_eq!(Timeline::new(" ").token_at(0), None);
    }

    /// Events as espeak-ng 1.51 reports "I paid 42 dollars." (abridged).
    fn paid_42() -> Timeline {
        let mut t = Timeline::new("I paid 42 dollars.");
        let events: &[(&str, u32, u32)] = &[
            ("W", 1, 0),
            ("aI", 0, 0),
            ("W", 3, 92),
            ("p", 141, 0),
            ("eI", 174, 0),
            ("d", 310, 0),
            ("W", 8, 400),
            ("f", 412, 0),
            ("o@", 488, 0),
            ("t#", 630, 0),
            ("i", 671, 0),
            ("W", 9, 727),
            ("t", 776, 0),
            ("u:", 816, 0),
            ("W", 11, 935),
            ("d", 935, 0),
            ("0", 1004, 0),
            ("l", 1179, 0),
            ("3", 1242, 0),
            ("z", 1318, 0),
            ("_:", 1397, 0),
            ("_", 1547, 0),
        ];
        for &(kind, a, b) in events {
            match kind {
                "W" => t.word(a, b),
                name => t.phoneme(a, name.into()),
            }
        }
        t
    }

    #[test]
    fn words_end_at_their_last_sound_and_merge_per_token() {
        let mut t = paid_42();
        let early = t.ready(500);
        assert_eq!(early.len(), 2, "I and paid are settled and delivered");
        assert_eq!((early[1].start_ms, early[1].end_ms), (92, 400));
        let words = t.finish(1547);
        let spans: Vec<(&str, u32, u32)> = words
            .iter()
            .map(|w| (w.word.as_str(), w.start_ms, w.end_ms))
            .collect();
        assert_eq!(spans, [("42", 400, 935), ("dollars", 935, 1397)]);
        let shapes: Vec<&str> = words[0].visemes.iter().map(|v| v.viseme.as_str()).collect();
        assert_eq!(shapes, ["FF", "oh", "DD", "ih", "DD", "ou"]);
        let paid = &early[1].visemes;
        assert_eq!(paid[0].start_ms, 141);
        let names: Vec<&str> = paid.iter().map(|v| v.viseme.as_str()).collect();
        assert_eq!(names, ["PP", "E", "ih", "DD"]);
        assert_eq!(paid.last().map(|v| v.end_ms), Some(400));
        assert!(t.finish(1547).is_empty());
    }

    #[test]
    fn timings_are_clipped_to_the_audio() {
        let mut t = paid_42();
        let words = t.finish(800);
        assert!(words.iter().all(|w| w.end_ms <= 800));
        assert!(
            words
                .iter()
                .flat_map(|w| &w.visemes)
                .all(|v| v.end_ms <= 800)
        );
        assert_eq!(words.len(), 3, "dollars starts after the audio ends");
    }

    #[test]
    fn phoneme_mnemonics_map_to_oculus_visemes() {
        for (phoneme, visemes) in [
            ("p", &["PP"][..]),
            ("m", &["PP"]),
            ("v", &["FF"]),
            ("D", &["TH"]),
            ("t#", &["DD"]),
            ("N", &["kk"]),
            ("tS", &["CH"]),
            ("z", &["SS"]),
            ("l", &["nn"]),
            ("r", &["RR"]),
            ("3:", &["RR"]),
            ("A:", &["aa"]),
            ("E", &["E"]),
            ("I#", &["ih"]),
            ("0", &["oh"]),
            ("u:", &["ou"]),
            ("aI", &["aa", "ih"]),
            ("_:", &["sil"]),
            ("h", &[]),
            (";", &[]),
        ] {
            assert_eq!(visemes_for_phoneme(phoneme), visemes, "{phoneme}");
        }
        let all: HashSet<&str> = VISEMES.into_iter().collect();
        for p in [
            "a", "b", "x", "Q", "@2", "j", "w", "n-", "aU@", "OI", "dZ", "e@",
        ] {
            assert!(
                visemes_for_phoneme(p).iter().all(|v| all.contains(v)),
                "{p}"
            );
        }
    }

    #[test]
    fn shapeless_phonemes_join_their_neighbours() {
        let mut track = VisemeTrack::default();
        track.add("h", 0, 50);
        track.add("E", 50, 120);
        track.add(";", 120, 130);
        track.add("l", 130, 200);
        track.add("l", 200, 200);
        let v = track.finish();
        let spans: Vec<(&str, u32, u32)> = v
            .iter()
            .map(|v| (v.viseme.as_str(), v.start_ms, v.end_ms))
            .collect();
        assert_eq!(spans, [("E", 0, 130), ("nn", 130, 200)]);
    }
}
