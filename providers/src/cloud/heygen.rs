//! HeyGen LiveAvatar in LITE mode: a remote avatar that animates a face to Adam's own
//! speech. Adam keeps its STT, LLM and TTS; LiveAvatar renders the video and streams it,
//! with the audio Adam sent, to the browser through a LiveKit room.
//!
//! One LiveAvatar session per conversation:
//! - `POST {base_url}/v1/sessions/token` with `X-API-KEY` and `{"mode": "LITE",
//!   "avatar_id", "is_sandbox"}` → `{"data": {"session_id", "session_token"}}`;
//! - `POST /v1/sessions/start` with `Authorization: Bearer <session_token>` →
//!   `{"data": {"livekit_url", "livekit_client_token", "ws_url", …}}`: the LiveKit URL
//!   and client token are for the browser, `ws_url` is Adam's command WebSocket;
//! - on the WebSocket, once `{"type": "session.state_updated", "state": "connected"}`
//!   came: `{"type": "agent.speak", "audio": base64 PCM16 LE mono 24 kHz}` in ~1 s
//!   pieces, `{"type": "agent.speak_end", "event_id"}` after a response's audio,
//!   `{"type": "agent.interrupt"}` on barge-in (ahead of any audio still queued);
//! - `POST /v1/sessions/keep-alive` (Bearer, `{"session_id"}`) every
//!   `keep_alive_interval_ms`, and `POST /v1/sessions/stop` (Bearer, `{"session_id",
//!   "reason"}`) when the session is closed or dropped.
//!
//! Errors come as HTTP statuses with `{"code", "message"}` bodies. A WebSocket that goes
//! quiet is pinged; one that stays quiet for `idle_timeout_ms` (or closes, or reports the
//! session `closed`) fails the session with a `ProviderError`, and it is stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use adam_actors::audio::{Resampler, pcm16_to_le_bytes, samples_for_ms};
use adam_actors::ports::{
    AvatarBackend, AvatarSettings, AvatarStream, BoxFuture, CancellationToken, ProviderError,
    RemoteAvatar,
};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Failure, ProviderGuard, ResilienceConfig, Stage};
use super::ws::{self, Socket};

/// The rate LiveAvatar takes audio at.
pub const SAMPLE_RATE: u32 = 24_000;

/// `[providers.heygen]`. The API key comes from [`keys::HEYGEN`](super::keys::HEYGEN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeyGenConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root (`https://api.liveavatar.com`).
    pub base_url: String,
    /// Avatar used when a dealership names none.
    pub avatar_id: String,
    /// Sandbox sessions (free, short, watermarked).
    pub sandbox: bool,
    /// Keep-alive period, ms (LiveAvatar ends a session idle for its timeout).
    pub keep_alive_interval_ms: u64,
    /// Audio per `agent.speak` message, ms (LiveAvatar recommends about a second).
    pub chunk_ms: u32,
    /// `agent.speak` messages queued towards the socket; more means it is stuck, and the
    /// session fails.
    pub queue_chunks: usize,
    /// `connect_timeout_ms` (HTTP and WebSocket), `first_byte_timeout_ms` (each start
    /// step, up to the socket's `connected` state), `idle_timeout_ms` (the dead-socket
    /// limit), `total_timeout_ms` (each call), retries and breaker of the start.
    pub resilience: ResilienceConfig,
}

impl Default for HeyGenConfig {
    fn default() -> Self {
        Self {
            name: "heygen".into(),
            base_url: "https://api.liveavatar.com".into(),
            avatar_id: String::new(),
            sandbox: false,
            keep_alive_interval_ms: 60_000,
            chunk_ms: 1_000,
            queue_chunks: 32,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The LiveAvatar client: opens one [`HeyGenSession`] per conversation.
pub struct HeyGen {
    config: HeyGenConfig,
    key: HeaderValue,
    http: reqwest::Client,
    guard: ProviderGuard,
}

impl std::fmt::Debug for HeyGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeyGen")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// LiveAvatar's response envelope: `{"code": 100, "data": …, "message"}`.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    code: Option<i64>,
    data: Option<T>,
    message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct TokenData {
    session_id: String,
    session_token: String,
}

#[derive(Debug, Deserialize)]
struct StartData {
    livekit_url: String,
    livekit_client_token: String,
    ws_url: String,
}

impl HeyGen {
    /// A client for `config` authenticating with `api_key`.
    pub fn new(
        config: HeyGenConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        http::endpoint(&config.base_url, "v1/sessions/token")?;
        if !(100..=10_000).contains(&config.chunk_ms) {
            return Err(ProviderError::Rejected(format!(
                "heygen.chunk_ms {} is not within 100–10000",
                config.chunk_ms
            )));
        }
        if config.keep_alive_interval_ms < 100 || config.queue_chunks == 0 {
            return Err(ProviderError::Rejected(
                "heygen.keep_alive_interval_ms must be at least 100 and queue_chunks at least 1"
                    .into(),
            ));
        }
        Ok(Self {
            key: http::secret_header("", &api_key)?,
            http: http::client(&config.resilience)?,
            guard: ProviderGuard::new(
                &config.name,
                Stage::Avatar,
                config.resilience.clone(),
                metrics,
            ),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// Starts a LiveAvatar session with `avatar_id` (empty: the configured one) and
    /// returns once its socket is `connected`. A failure after the session was created
    /// stops it again.
    #[tracing::instrument(skip_all, fields(provider = %self.config.name))]
    pub async fn open(
        &self,
        avatar_id: &str,
        cancel: CancellationToken,
    ) -> Result<HeyGenSession, ProviderError> {
        let avatar_id = match avatar_id.trim() {
            "" => self.config.avatar_id.trim(),
            id => id,
        };
        if avatar_id.is_empty() {
            return Err(ProviderError::Rejected(format!(
                "{}: no avatar_id (set the dealership's avatar.avatar_id or providers.heygen.avatar_id)",
                self.config.name
            )));
        }
        let token = self
            .guard
            .unary(&cancel, || self.create_token(avatar_id))
            .await?;
        let lease = Lease {
            http: self.http.clone(),
            provider: self.config.name.as_str().into(),
            base_url: self.config.base_url.clone(),
            session_id: token.session_id.clone(),
            bearer: http::secret_header("Bearer ", &SecretString::from(token.session_token))?,
            timeout: Duration::from_millis(self.config.resilience.total_timeout_ms),
        };
        // From here a LiveAvatar session exists: it is stopped on every failure.
        let opened = async {
            let started = self
                .guard
                .unary(&cancel, || self.start_session(&lease))
                .await?;
            let socket = self
                .guard
                .unary(&cancel, || self.open_socket(&lease, &started.ws_url))
                .await?;
            Ok::<_, ProviderError>((started, socket))
        };
        let (started, socket) = match opened.await {
            Ok(opened) => opened,
            Err(error) => {
                if let Err(e) = lease.stop(STOP_FAILED).await {
                    tracing::warn!(error = %e, "stopping a half-started LiveAvatar session failed");
                }
                return Err(error);
            }
        };
        tracing::info!(session = %lease.session_id, "LiveAvatar session connected");
        Ok(HeyGenSession::spawn(
            &self.config,
            lease,
            socket,
            started.livekit_url,
            started.livekit_client_token,
        ))
    }

    async fn create_token(&self, avatar_id: &str) -> Result<TokenData, Failure> {
        let provider = self.guard.provider();
        let url = http::endpoint(&self.config.base_url, "v1/sessions/token")?;
        let body = json!({
            "mode": "LITE",
            "avatar_id": avatar_id,
            "is_sandbox": self.config.sandbox,
        });
        let response = self
            .http
            .post(url)
            .header("x-api-key", self.key.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        data(provider, response).await
    }

    async fn start_session(&self, lease: &Lease) -> Result<StartData, Failure> {
        let provider = self.guard.provider();
        let url = http::endpoint(&self.config.base_url, "v1/sessions/start")?;
        let response = self
            .http
            .post(url)
            .header("authorization", lease.bearer.clone())
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        data(provider, response).await
    }

    /// Connects the command socket and waits for the `connected` state.
    async fn open_socket(&self, lease: &Lease, url: &str) -> Result<Socket, Failure> {
        let provider = self.guard.provider();
        let mut socket = ws::connect(
            provider,
            url,
            ("authorization", lease.bearer.clone()),
            self.config.resilience.connect_timeout(),
        )
        .await?;
        loop {
            let text = match socket.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Err(ws::close_failure(provider, frame.as_ref()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ws::socket_failure(provider, &e)),
                None => return Err(ws::close_failure(provider, None)),
            };
            match session_state(&text).as_deref() {
                Some("connected") => return Ok(socket),
                Some("closed" | "closing") => {
                    return Err(Failure::from(ProviderError::Unavailable(format!(
                        "{provider}: the session closed before it connected"
                    ))));
                }
                _ => {}
            }
        }
    }
}

/// The `data` of a LiveAvatar response, or the failure its status or envelope means.
async fn data<T: DeserializeOwned>(
    provider: &str,
    response: reqwest::Response,
) -> Result<T, Failure> {
    let response = http::check(provider, response).await?;
    let envelope: Envelope<T> = response.json().await.map_err(|e| {
        Failure::from(ProviderError::Unavailable(format!(
            "{provider}: malformed response ({e})"
        )))
    })?;
    match envelope {
        Envelope { data: Some(d), .. } => Ok(d),
        Envelope { code, message, .. } => {
            let message = format!(
                "{provider}: {} (code {})",
                message.unwrap_or_else(|| "no data in the response".into()),
                code.map_or_else(|| "none".into(), |c| c.to_string())
            );
            // LiveAvatar's codes follow HTTP's: 4xx is the request's fault.
            Err(Failure::from(match code {
                Some(400..=499) => ProviderError::Rejected(message),
                _ => ProviderError::Unavailable(message),
            }))
        }
    }
}

/// The `state` of a `session.state_updated` message.
fn session_state(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    (value["type"] == "session.state_updated")
        .then(|| value["state"].as_str().map(str::to_owned))
        .flatten()
}

/// `stop` reasons (LiveAvatar's `SessionEndReasonEnum`).
const STOP_CLOSED: &str = "USER_CLOSED";
const STOP_FAILED: &str = "SERVER_ERROR";

/// What keeping a LiveAvatar session alive and stopping it takes.
#[derive(Clone)]
struct Lease {
    http: reqwest::Client,
    provider: Arc<str>,
    base_url: String,
    session_id: String,
    bearer: HeaderValue,
    timeout: Duration,
}

impl Lease {
    async fn post(&self, path: &str, body: Value) -> Result<(), ProviderError> {
        let url = http::endpoint(&self.base_url, path)?;
        let call = async {
            let response = self
                .http
                .post(url)
                .header("authorization", self.bearer.clone())
                .json(&body)
                .send()
                .await
                .map_err(|e| http::transport(&self.provider, &e))?;
            http::check(&self.provider, response).await.map(drop)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|f| f.error),
            Err(_) => Err(ProviderError::Timeout),
        }
    }

    async fn keep_alive(&self) -> Result<(), ProviderError> {
        self.post(
            "v1/sessions/keep-alive",
            json!({"session_id": self.session_id}),
        )
        .await
    }

    async fn stop(&self, reason: &str) -> Result<(), ProviderError> {
        self.post(
            "v1/sessions/stop",
            json!({"session_id": self.session_id, "reason": reason}),
        )
        .await
    }
}

/// What the handle sends the socket task.
enum Command {
    Speak { generation: u64, audio: String },
    SpeakEnd { generation: u64, event_id: String },
}

impl Command {
    fn generation(&self) -> u64 {
        match self {
            Command::Speak { generation, .. } | Command::SpeakEnd { generation, .. } => *generation,
        }
    }

    fn into_message(self) -> Message {
        let value = match self {
            Command::Speak { audio, .. } => json!({"type": "agent.speak", "audio": audio}),
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
    fn spawn(
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

    fn speak_piece(&self, piece: &[i16]) -> Result<(), ProviderError> {
        let audio = base64::engine::general_purpose::STANDARD.encode(pcm16_to_le_bytes(piece));
        self.send(Command::Speak {
            generation: self.generation(),
            audio,
        })
    }

    /// Audio of the response being spoken (PCM16 mono at `sample_rate`), sent in pieces
    /// of `chunk_ms` as they fill.
    pub fn speak(&mut self, samples: &[i16], sample_rate: u32) -> Result<(), ProviderError> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        for piece in self.chunker.push(samples, sample_rate) {
            self.speak_piece(&piece)?;
        }
        Ok(())
    }

    /// The response's audio is complete: sends the rest and `agent.speak_end`.
    pub fn speak_end(&mut self, event_id: &str) -> Result<(), ProviderError> {
        if let Some(rest) = self.chunker.finish() {
            self.speak_piece(&rest)?;
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
        _response_id: &str,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), ProviderError> {
        self.speak(samples, sample_rate)
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

impl AvatarBackend for HeyGen {
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        settings: &'a AvatarSettings,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>> {
        Box::pin(async move {
            tracing::debug!(session_id, "starting a LiveAvatar session");
            let session = self
                .open(settings.avatar_id.as_deref().unwrap_or_default(), cancel)
                .await?;
            Ok(Some(Box::new(session) as Box<dyn RemoteAvatar>))
        })
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
        let mut watchdog = tokio::time::interval(self.idle / 2);
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
                    if quiet >= self.idle / 2 {
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

    #[test]
    fn state_updates_are_read() {
        assert_eq!(
            session_state(r#"{"type":"session.state_updated","state":"connected"}"#).as_deref(),
            Some("connected")
        );
        assert_eq!(session_state(r#"{"type":"agent.speak_started"}"#), None);
        assert_eq!(session_state("not json"), None);
    }
}
