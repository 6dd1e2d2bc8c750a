//! One running LiveAvatar session: the handle the avatar actor calls (it only queues), the
//! sans-IO [`Chunker`] that cuts audio into `agent.speak` pieces, and the task that drives
//! the command socket (interrupts first, pings, keep-alives, the stop at the end).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use adam_actors::audio::{Resampler, pcm16_to_le_bytes, samples_for_ms};
use adam_actors::ports::{AvatarStream, BoxFuture, ProviderError, RemoteAvatar};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::super::ws::{self, Socket};
use super::{
    HeyGenConfig, Lease, SAMPLE_RATE, STOP_CLOSED, STOP_FAILED, server_error, session_state,
};

/// What the handle sends the socket task.
enum Command {
    Speak {
        generation: u64,
        event_id: String,
        audio: String,
    },
    SpeakEnd {
        generation: u64,
        event_id: String,
    },
}

impl Command {
    fn generation(&self) -> u64 {
        match self {
            Command::Speak { generation, .. } | Command::SpeakEnd { generation, .. } => *generation,
        }
    }

    fn into_message(self) -> Message {
        let value = match self {
            Command::Speak {
                audio, event_id, ..
            } => json!({"type": "agent.speak", "audio": audio, "event_id": event_id}),
            Command::SpeakEnd { event_id, .. } => {
                json!({"type": "agent.speak_end", "event_id": event_id})
            }
        };
        Message::text(value.to_string())
    }
}

/// Interrupts jump the queue: the handle bumps the generation (so audio queued before
/// is skipped) and wakes the task, which sends `agent.interrupt` before anything else.
#[derive(Default)]
struct Interrupts {
    generation: AtomicU64,
    wake: Notify,
}

/// Cuts resampled audio into `agent.speak` pieces. Sans-IO.
#[derive(Debug)]
pub struct Chunker {
    resampler: Option<(u32, Resampler)>,
    pending: Vec<i16>,
    chunk: usize,
}

impl Chunker {
    /// Pieces of `chunk_ms` at 24 kHz.
    pub fn new(chunk_ms: u32) -> Self {
        Self {
            resampler: None,
            pending: Vec::new(),
            chunk: samples_for_ms(chunk_ms, SAMPLE_RATE).max(1),
        }
    }

    /// Takes audio at `rate`; returns the pieces now complete (24 kHz).
    pub fn push(&mut self, samples: &[i16], rate: u32) -> Vec<Vec<i16>> {
        let resampled = match &mut self.resampler {
            Some((r, resampler)) if *r == rate => resampler.process(samples),
            _ => {
                let mut resampler = Resampler::new(rate, SAMPLE_RATE);
                let out = resampler.process(samples);
                self.resampler = Some((rate, resampler));
                out
            }
        };
        self.pending.extend_from_slice(&resampled);
        let mut pieces = Vec::new();
        while self.pending.len() >= self.chunk {
            pieces.push(self.pending.drain(..self.chunk).collect());
        }
        pieces
    }

    /// The end of a response: what is left (the next response starts afresh).
    pub fn finish(&mut self) -> Option<Vec<i16>> {
        self.resampler = None;
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Barge-in: drops what was not sent.
    pub fn clear(&mut self) {
        self.resampler = None;
        self.pending.clear();
    }
}

/// One running LiveAvatar session: the browser's LiveKit credentials, and the command
/// socket driven by a task of its own. Calls queue and return at once. Closing it, or
/// dropping it, closes the socket and stops the session at LiveAvatar.
pub struct HeyGenSession {
    provider: Arc<str>,
    session_id: String,
    livekit_url: String,
    access_token: String,
    commands: Option<mpsc::Sender<Command>>,
    interrupts: Arc<Interrupts>,
    failed: watch::Receiver<Option<ProviderError>>,
    stopped: Option<oneshot::Receiver<Result<(), ProviderError>>>,
    chunker: Chunker,
    stop_wait: Duration,
}

impl std::fmt::Debug for HeyGenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeyGenSession")
            .field("session_id", &self.session_id)
            .field("livekit_url", &self.livekit_url)
            .finish_non_exhaustive()
    }
}

impl HeyGenSession {
    pub(super) fn spawn(
        config: &HeyGenConfig,
        lease: Lease,
        socket: Socket,
        livekit_url: String,
        access_token: String,
    ) -> Self {
        let (commands, rx) = mpsc::channel(config.queue_chunks);
        let interrupts = Arc::new(Interrupts::default());
        let (failed_tx, failed) = watch::channel(None);
        let (stopped_tx, stopped) = oneshot::channel();
        let stop_wait = lease.timeout + Duration::from_secs(2);
        let driver = Driver {
            socket,
            commands: rx,
            interrupts: interrupts.clone(),
            idle: config
                .resilience
                .idle_timeout()
                .max(Duration::from_millis(20)),
            keep_alive: Duration::from_millis(config.keep_alive_interval_ms),
            lease: lease.clone(),
        };
        tokio::spawn(async move {
            let result = driver.run(failed_tx).await;
            let _ = stopped_tx.send(result);
        });
        Self {
            provider: lease.provider,
            session_id: lease.session_id,
            livekit_url,
            access_token,
            commands: Some(commands),
            interrupts,
            failed,
            stopped: Some(stopped),
            chunker: Chunker::new(config.chunk_ms),
            stop_wait,
        }
    }

    /// LiveAvatar's session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The LiveKit server the browser joins.
    pub fn livekit_url(&self) -> &str {
        &self.livekit_url
    }

    /// The browser's LiveKit access token.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The error the session failed with, if it did.
    fn failure(&self) -> Option<ProviderError> {
        self.failed.borrow().clone()
    }

    fn send(&self, command: Command) -> Result<(), ProviderError> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        let commands = self.commands.as_ref().ok_or_else(|| {
            ProviderError::Unavailable(format!("{}: the session is closed", self.provider))
        })?;
        commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                tracing::warn!(provider = %self.provider, "LiveAvatar send queue full; the socket is stuck");
                ProviderError::Unavailable(format!(
                    "{}: the avatar's send queue is full",
                    self.provider
                ))
            }
            mpsc::error::TrySendError::Closed(_) => self.failure().unwrap_or_else(|| {
                ProviderError::Unavailable(format!("{}: the session is closed", self.provider))
            }),
        })
    }

    fn generation(&self) -> u64 {
        self.interrupts.generation.load(Ordering::SeqCst)
    }

    fn speak_piece(&self, event_id: &str, piece: &[i16]) -> Result<(), ProviderError> {
        let audio = base64::engine::general_purpose::STANDARD.encode(pcm16_to_le_bytes(piece));
        self.send(Command::Speak {
            generation: self.generation(),
            event_id: event_id.to_owned(),
            audio,
        })
    }

    /// Audio of response `event_id` (PCM16 mono at `sample_rate`), sent in pieces of
    /// `chunk_ms` as they fill, each carrying `event_id`: LiveAvatar plays the pieces of
    /// one id as one speaking event.
    pub fn speak(
        &mut self,
        event_id: &str,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), ProviderError> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        for piece in self.chunker.push(samples, sample_rate) {
            self.speak_piece(event_id, &piece)?;
        }
        Ok(())
    }

    /// Response `event_id`'s audio is complete: sends the rest and `agent.speak_end`.
    pub fn speak_end(&mut self, event_id: &str) -> Result<(), ProviderError> {
        if let Some(rest) = self.chunker.finish() {
            self.speak_piece(event_id, &rest)?;
        }
        self.send(Command::SpeakEnd {
            generation: self.generation(),
            event_id: event_id.to_owned(),
        })
    }

    /// Stops the avatar talking now; audio not yet sent is dropped.
    pub fn interrupt(&mut self) -> Result<(), ProviderError> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        self.chunker.clear();
        self.interrupts.generation.fetch_add(1, Ordering::SeqCst);
        self.interrupts.wake.notify_one();
        Ok(())
    }

    /// Resolves when the session fails on its own (never after a normal close).
    pub fn failed(&self) -> impl Future<Output = ProviderError> + Send + 'static {
        let mut failed = self.failed.clone();
        async move {
            let error = match failed.wait_for(Option::is_some).await {
                Ok(error) => error.clone(),
                // Closed normally: nothing will fail.
                Err(_) => None,
            };
            match error {
                Some(error) => error,
                None => std::future::pending().await,
            }
        }
    }

    /// Closes the socket and stops the session at LiveAvatar; the stop call's result.
    pub fn close(mut self) -> impl Future<Output = Result<(), ProviderError>> + Send + 'static {
        self.commands = None;
        let stopped = self.stopped.take();
        let wait = self.stop_wait;
        async move {
            let Some(stopped) = stopped else {
                return Ok(());
            };
            match tokio::time::timeout(wait, stopped).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ProviderError::Unavailable(
                    "heygen: the socket task died".into(),
                )),
                Err(_) => Err(ProviderError::Timeout),
            }
        }
    }
}

impl RemoteAvatar for HeyGenSession {
    fn stream(&self) -> AvatarStream {
        AvatarStream {
            provider: "heygen".into(),
            livekit_url: self.livekit_url.clone(),
            access_token: self.access_token.clone(),
        }
    }

    fn audio(
        &mut self,
        response_id: &str,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), ProviderError> {
        self.speak(response_id, samples, sample_rate)
    }

    fn end_of_response(&mut self, response_id: &str) -> Result<(), ProviderError> {
        self.speak_end(response_id)
    }

    fn interrupt(&mut self) -> Result<(), ProviderError> {
        HeyGenSession::interrupt(self)
    }

    fn failed(&self) -> BoxFuture<'static, ProviderError> {
        Box::pin(HeyGenSession::failed(self))
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, Result<(), ProviderError>> {
        Box::pin(self.close())
    }
}

/// The socket task of one session.
struct Driver {
    socket: Socket,
    commands: mpsc::Receiver<Command>,
    interrupts: Arc<Interrupts>,
    idle: Duration,
    keep_alive: Duration,
    lease: Lease,
}

impl Driver {
    /// Drives the socket until the handle closes or the socket fails, then closes it and
    /// stops the session; returns the stop call's result (or the failure).
    async fn run(
        mut self,
        failed: watch::Sender<Option<ProviderError>>,
    ) -> Result<(), ProviderError> {
        let outcome = self.drive().await;
        if let Err(error) = &outcome {
            tracing::warn!(provider = %self.lease.provider, error = %error, "LiveAvatar session failed");
            failed.send_replace(Some(error.clone()));
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
        let reason = if outcome.is_ok() {
            STOP_CLOSED
        } else {
            STOP_FAILED
        };
        let stopped = self.lease.stop(reason).await;
        if let Err(e) = &stopped {
            tracing::warn!(provider = %self.lease.provider, error = %e, "stopping the LiveAvatar session failed");
        }
        outcome.and(stopped)
    }

    async fn send(&mut self, message: Message) -> Result<(), ProviderError> {
        match tokio::time::timeout(self.idle, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ws::socket_failure(&self.lease.provider, &e).error),
            Err(_) => Err(ProviderError::Timeout),
        }
    }

    /// Sends `agent.interrupt` if the handle asked for one since the last (`applied` is
    /// the generation last interrupted to).
    async fn interrupt_if_asked(&mut self, applied: &mut u64) -> Result<(), ProviderError> {
        let asked = self.interrupts.generation.load(Ordering::SeqCst);
        if asked == *applied {
            return Ok(());
        }
        *applied = asked;
        self.send(Message::text(
            json!({"type": "agent.interrupt"}).to_string(),
        ))
        .await
    }

    async fn drive(&mut self) -> Result<(), ProviderError> {
        let provider = self.lease.provider.clone();
        let mut heard = Instant::now();
        // Pinged after a quarter of the limit without a word, checked as often: a live
        // socket's pong comes back with most of the limit to spare.
        let mut watchdog = tokio::time::interval(self.idle / 4);
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut keep_alive =
            tokio::time::interval_at(Instant::now() + self.keep_alive, self.keep_alive);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut applied = 0;
        loop {
            tokio::select! {
                biased;
                () = self.interrupts.wake.notified() => self.interrupt_if_asked(&mut applied).await?,
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        return Ok(());
                    };
                    // An interrupt asked for but not yet seen goes first.
                    self.interrupt_if_asked(&mut applied).await?;
                    // Queued before the interrupt: dropped.
                    if command.generation() == applied {
                        self.send(command.into_message()).await?;
                    }
                }
                message = self.socket.next() => {
                    heard = Instant::now();
                    match message {
                        None => return Err(ws::close_failure(&provider, None).error),
                        Some(Err(e)) => return Err(ws::socket_failure(&provider, &e).error),
                        Some(Ok(Message::Close(frame))) => {
                            return Err(ws::close_failure(&provider, frame.as_ref()).error);
                        }
                        Some(Ok(Message::Text(text))) => {
                            // LiveAvatar refused something: the avatar is silent from here,
                            // so the session fails (the built-in avatar takes over).
                            if let Some(error) = server_error(&provider, &text) {
                                return Err(error);
                            }
                            if let Some("closed" | "closing") = session_state(&text).as_deref() {
                                return Err(ProviderError::Unavailable(format!(
                                    "{provider}: the session was closed by LiveAvatar"
                                )));
                            }
                        }
                        Some(Ok(_)) => {}
                    }
                }
                _ = watchdog.tick() => {
                    let quiet = heard.elapsed();
                    if quiet >= self.idle {
                        tracing::warn!(provider = %provider, quiet_ms = quiet.as_millis() as u64, "LiveAvatar socket went quiet");
                        return Err(ProviderError::Timeout);
                    }
                    if quiet >= self.idle / 4 {
                        self.send(Message::Ping(Default::default())).await?;
                    }
                }
                _ = keep_alive.tick() => {
                    let lease = self.lease.clone();
                    // Off the loop: a slow keep-alive must not hold audio back.
                    tokio::spawn(async move {
                        if let Err(e) = lease.keep_alive().await {
                            tracing::warn!(provider = %lease.provider, error = %e, "LiveAvatar keep-alive failed");
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_is_resampled_to_24_khz_and_cut_into_pieces() {
        let mut c = Chunker::new(1_000);
        // 2.5 s at 16 kHz in 100 ms pieces.
        let mut pieces = Vec::new();
        for _ in 0..25 {
            pieces.extend(c.push(&[1000; 1600], 16_000));
        }
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() == 24_000));
        let rest = c.finish().expect("the last half second");
        // Less the resampler's half filter still inside it.
        assert!((11_900..=12_000).contains(&rest.len()), "{}", rest.len());
        assert_eq!(c.finish(), None);
        c.push(&[5; 4800], 24_000);
        c.clear();
        assert_eq!(c.finish(), None, "an interrupt drops what was not sent");
    }
}
