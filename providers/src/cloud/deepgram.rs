//! Deepgram live transcription over its WebSocket (`wss://api.deepgram.com/v1/listen`,
//! `Authorization: Token KEY`, raw `linear16` audio in binary frames).
//!
//! Two ways to use it:
//! - [`DeepgramStt`] implements `SpeechToText` for one finished utterance: the audio is
//!   sent, then `Finalize` and `CloseStream`; final results are joined into the
//!   transcript and interim ones go to `partial`.
//! - [`DeepgramSession`] streams a whole conversation: frames are sent as they come,
//!   `KeepAlive` is sent when no audio went out for a while, and [`SttEvent`]s come back,
//!   including Deepgram's endpointing (`speech_final`, `UtteranceEnd`). [`DeepgramStt`]
//!   implements `ListeningStt` on it, so that Deepgram decides when a turn ends
//!   (`providers.deepgram.end_of_turn`).
//!
//! Server messages read: `Results` (`is_final`, `speech_final`, `from_finalize`,
//! `channel.alternatives[0].transcript`), `UtteranceEnd`, `SpeechStarted`, `Metadata`,
//! and `Error`; a close frame before `CloseStream` is a failure (1008: the audio or
//! request was refused; 1011: Deepgram's side, e.g. no audio for 10 s).
//!
//! Deepgram documents no message during silence and no guaranteed answer to `Finalize`
//! ("not guaranteed if there is no significant amount of audio data to process"), so a
//! quiet stream is checked with WebSocket pings, and a forced end of turn waits for the
//! `Finalize` answer at most [`FINALIZE_WAIT`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use adam_actors::ports::{
    BoxFuture, CancellationToken, ListenEvent, ListenInput, Listening, ListeningStt, ProviderError,
    SpeechToText, SttRequest, Vocabulary,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use reqwest::Url;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::audio::pcm_bytes;
use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Failure, ProviderGuard, ResilienceConfig, Stage};
use super::ws;

/// Audio per binary frame when a finished utterance is sent, ms.
const FRAME_MS: usize = 100;
/// Commands (audio frames) queued to a session's socket before `send_audio` waits.
const COMMAND_QUEUE: usize = 64;
/// Events queued to the session's owner before the socket is read no further.
const EVENT_QUEUE: usize = 64;
/// Audio frames (20 ms) queued to a listening stream before the session counts it as
/// failed (5 s).
const LISTEN_QUEUE: usize = 250;
/// Most key terms (or keywords) sent: Deepgram takes up to 500 tokens of key terms and
/// recommends a few dozen; more dilute the boost.
pub const MAX_TERMS: usize = 50;
/// The boost given to each keyword (older models), as Deepgram's examples use.
const KEYWORD_BOOST: u32 = 2;
/// How long a forced end of turn waits for the answer to its `Finalize` before ending the
/// turn with the finals already heard (Deepgram does not answer when it holds no
/// significant audio, e.g. when endpointing already finalised the words).
pub const FINALIZE_WAIT: Duration = Duration::from_millis(1_000);

/// `[providers.deepgram]`. The API key comes from
/// [`keys::DEEPGRAM`](super::keys::DEEPGRAM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// The listen endpoint.
    pub url: String,
    /// Model.
    pub model: String,
    /// Language (`en`, `en-US`, `multi`); empty for the model's default.
    pub language: String,
    /// Silence that ends an utterance (`speech_final`), ms; 0 turns endpointing off.
    pub endpointing_ms: u32,
    /// Gap between words that sends `UtteranceEnd`, ms (Deepgram's minimum is 1000).
    pub utterance_end_ms: u32,
    /// Punctuation and formatting (numbers, dates).
    pub smart_format: bool,
    /// Domain words to boost (`keyterm`, Nova-3).
    pub keyterms: Vec<String>,
    /// Deepgram's endpointing ends the customer's turns (a stream per session), instead of
    /// the local VAD's silence; only when Deepgram is first in `providers.stt`.
    pub end_of_turn: bool,
    /// `KeepAlive` after this long without audio, ms (Deepgram closes after 10 s).
    pub keepalive_ms: u64,
    /// Timeouts, retries, breaker. The first-byte timeout bounds a whole utterance's
    /// transcription; the idle timeout bounds silence while results are awaited.
    pub resilience: ResilienceConfig,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            name: "deepgram".into(),
            url: "wss://api.deepgram.com/v1/listen".into(),
            model: "nova-3".into(),
            language: "en".into(),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
            smart_format: true,
            keyterms: Vec::new(),
            end_of_turn: false,
            keepalive_ms: 3_000,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// What a streaming session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// Voice activity began (`SpeechStarted`), seconds into the stream.
    SpeechStarted {
        /// When.
        at_secs: f64,
    },
    /// A transcript of the latest audio.
    Transcript {
        /// The text (may be empty: silence).
        text: String,
        /// This stretch of audio will not be transcribed again (otherwise interim).
        is_final: bool,
        /// Deepgram's endpointing saw the end of an utterance here.
        speech_final: bool,
        /// The answer to a `Finalize`.
        from_finalize: bool,
    },
    /// No word for `utterance_end_ms` after the last one (`UtteranceEnd`).
    UtteranceEnd {
        /// End of the last word, seconds into the stream.
        last_word_end_secs: f64,
    },
    /// The stream summary Deepgram sends after `CloseStream`.
    Metadata {
        /// Deepgram's request id (for support).
        request_id: String,
    },
    /// Deepgram closed the stream after `CloseStream`.
    Closed,
}

/// Reads one server message (sans-IO); `None` for message types of no interest.
pub fn parse_event(text: &str) -> Result<Option<SttEvent>, ProviderError> {
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ProviderError::Unavailable(format!("malformed Deepgram message ({e})")))?;
    let f64_at = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let flag = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let event = match json.get("type").and_then(|t| t.as_str()) {
        Some("Results") => Some(SttEvent::Transcript {
            text: json
                .pointer("/channel/alternatives/0/transcript")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .trim()
                .to_owned(),
            is_final: flag("is_final"),
            speech_final: flag("speech_final"),
            from_finalize: flag("from_finalize"),
        }),
        Some("UtteranceEnd") => Some(SttEvent::UtteranceEnd {
            last_word_end_secs: f64_at("last_word_end"),
        }),
        Some("SpeechStarted") => Some(SttEvent::SpeechStarted {
            at_secs: f64_at("timestamp"),
        }),
        Some("Metadata") => Some(SttEvent::Metadata {
            request_id: json
                .get("request_id")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned(),
        }),
        Some("Error") => {
            let message = ["description", "message", "variant"]
                .iter()
                .find_map(|k| json.get(*k).and_then(|v| v.as_str()))
                .unwrap_or("error");
            return Err(ProviderError::Unavailable(format!("Deepgram: {message}")));
        }
        _ => None,
    };
    Ok(event)
}

/// The Deepgram client.
pub struct DeepgramStt {
    config: DeepgramConfig,
    auth: HeaderValue,
    guard: ProviderGuard,
}

impl std::fmt::Debug for DeepgramStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramStt")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DeepgramStt {
    /// A client for `config` authenticating with `api_key`.
    pub fn new(
        config: DeepgramConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        // Checked now so that a bad URL fails at startup.
        Self::listen_url(&config, 16_000, &Vocabulary::default())?;
        Ok(Self {
            auth: http::secret_header("Token ", &api_key)?,
            guard: ProviderGuard::new(&config.name, Stage::Stt, config.resilience.clone(), metrics),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// The listen URL for audio at `sample_rate`, biased towards the configured key terms
    /// and then the conversation's `vocabulary`: `keyterm` for Nova-3 (and Flux) models,
    /// `keywords` (one word each, boosted) for older ones — at most [`MAX_TERMS`].
    pub fn listen_url(
        config: &DeepgramConfig,
        sample_rate: u32,
        vocabulary: &Vocabulary,
    ) -> Result<Url, ProviderError> {
        let mut url = Url::parse(&config.url).map_err(|e| {
            ProviderError::Rejected(format!("bad Deepgram URL `{}`: {e}", config.url))
        })?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(ProviderError::Rejected(format!(
                "Deepgram URL `{}` must be ws:// or wss://",
                config.url
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("encoding", "linear16")
                .append_pair("sample_rate", &sample_rate.to_string())
                .append_pair("channels", "1")
                .append_pair("model", &config.model)
                .append_pair("interim_results", "true")
                .append_pair("vad_events", "true")
                .append_pair("utterance_end_ms", &config.utterance_end_ms.to_string());
            if config.endpointing_ms == 0 {
                q.append_pair("endpointing", "false");
            } else {
                q.append_pair("endpointing", &config.endpointing_ms.to_string());
            }
            if !config.language.is_empty() {
                q.append_pair("language", &config.language);
            }
            if config.smart_format {
                q.append_pair("smart_format", "true");
            }
            let keyterm = config.model.starts_with("nova-3") || config.model.starts_with("flux");
            let mut terms: Vec<&str> = Vec::new();
            let candidates = config
                .keyterms
                .iter()
                .map(String::as_str)
                .chain(vocabulary.terms().iter().map(String::as_str));
            for term in candidates {
                // Keywords are single words; key terms may be phrases.
                let pieces: Vec<&str> = if keyterm {
                    vec![term.trim()]
                } else {
                    term.split_whitespace().collect()
                };
                for piece in pieces {
                    if terms.len() < MAX_TERMS
                        && !piece.is_empty()
                        && !terms.iter().any(|t| t.eq_ignore_ascii_case(piece))
                    {
                        terms.push(piece);
                    }
                }
            }
            for term in terms {
                if keyterm {
                    q.append_pair("keyterm", term);
                } else {
                    q.append_pair("keywords", &format!("{term}:{KEYWORD_BOOST}"));
                }
            }
        }
        Ok(url)
    }

    async fn connect(
        &self,
        sample_rate: u32,
        vocabulary: &Vocabulary,
    ) -> Result<ws::Socket, Failure> {
        let url = Self::listen_url(&self.config, sample_rate, vocabulary).map_err(Failure::from)?;
        ws::connect(
            self.guard.provider(),
            url.as_str(),
            Some(("authorization", self.auth.clone())),
            self.config.resilience.connect_timeout(),
        )
        .await
    }

    /// Opens a streaming session for audio at `sample_rate`, biased towards `vocabulary`
    /// (connect retried by the guard). The session ends when `cancel` fires or the
    /// session is dropped.
    pub async fn open_session(
        &self,
        sample_rate: u32,
        vocabulary: &Vocabulary,
        cancel: CancellationToken,
    ) -> Result<DeepgramSession, ProviderError> {
        let socket = self
            .guard
            .unary(&cancel, || self.connect(sample_rate, vocabulary))
            .await?;
        Ok(self.session(socket, cancel))
    }

    fn session(&self, socket: ws::Socket, cancel: CancellationToken) -> DeepgramSession {
        DeepgramSession::start(
            socket,
            Timing {
                keepalive: Duration::from_millis(self.config.keepalive_ms.max(1)),
                idle: self.config.resilience.idle_timeout(),
            },
            self.guard.provider().to_owned(),
            cancel,
        )
    }

    async fn attempt(
        &self,
        request: &SttRequest,
        partial: &mpsc::Sender<String>,
        cancel: &CancellationToken,
    ) -> Result<String, Failure> {
        let socket = self
            .connect(request.sample_rate, &request.vocabulary)
            .await?;
        let (sender, mut events) = self.session(socket, cancel.child_token()).split();
        let frame = (request.sample_rate as usize * FRAME_MS / 1000).max(1);
        // Audio goes out while results come in: a long turn's interim results must not
        // fill the event queue while the upload waits.
        let upload = async {
            for chunk in request.audio.chunks(frame) {
                sender.send_audio(chunk).await?;
            }
            sender.finalize().await?;
            sender.close().await
        };
        let collect = async {
            let mut finals: Vec<String> = Vec::new();
            while let Some(event) = events.next().await {
                match event? {
                    SttEvent::Transcript {
                        text,
                        is_final: true,
                        from_finalize,
                        ..
                    } => {
                        if !text.is_empty() {
                            finals.push(text);
                        }
                        if from_finalize {
                            break;
                        }
                    }
                    SttEvent::Transcript { text, .. } => {
                        let mut shown = finals.clone();
                        shown.push(text);
                        // Interim text is advisory: never wait for a slow reader.
                        let _ = partial.try_send(shown.join(" "));
                    }
                    SttEvent::Metadata { .. } | SttEvent::Closed => break,
                    SttEvent::SpeechStarted { .. } | SttEvent::UtteranceEnd { .. } => {}
                }
            }
            Ok::<_, ProviderError>(finals.join(" "))
        };
        let (uploaded, transcript) = tokio::join!(upload, collect);
        // The socket's own error (in the events) says more than a refused send.
        let transcript = transcript?;
        uploaded?;
        Ok(transcript)
    }
}

impl SpeechToText for DeepgramStt {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if request.audio.is_empty() {
                return Ok(String::new());
            }
            self.guard
                .unary(&cancel, || self.attempt(&request, &partial, &cancel))
                .await
        })
    }
}

impl ListeningStt for DeepgramStt {
    fn listen(
        &self,
        sample_rate: u32,
        vocabulary: Vocabulary,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Listening, ProviderError>> {
        Box::pin(async move {
            let (sender, events) = self
                .open_session(sample_rate, &vocabulary, cancel)
                .await?
                .split();
            let (audio, input) = mpsc::channel(LISTEN_QUEUE);
            let (heard, heard_rx) = mpsc::channel(EVENT_QUEUE);
            let (finalized, finalized_rx) = mpsc::channel(EVENT_QUEUE);
            tokio::spawn(upload(sender, input, finalized));
            tokio::spawn(turns(events, finalized_rx, heard));
            Ok(Listening {
                audio,
                events: heard_rx,
            })
        })
    }
}

/// Sends a listening stream's input until its owner drops it, then `CloseStream`; each
/// `Finalize` sent is reported to [`turns`] (its answer may never come).
async fn upload(
    sender: DeepgramSender,
    mut input: mpsc::Receiver<ListenInput>,
    finalized: mpsc::Sender<()>,
) {
    while let Some(item) = input.recv().await {
        let sent = match item {
            ListenInput::Audio(samples) => sender.send_audio(&samples).await,
            ListenInput::Finalize => {
                let sent = sender.finalize().await;
                // Full: a Finalize is already awaited, which is the same deadline.
                let _ = finalized.try_send(());
                sent
            }
        };
        if sent.is_err() {
            return; // the error reaches the owner through the events
        }
    }
    let _ = sender.close().await;
}

/// Turns Deepgram's results into turns: final pieces gather until `speech_final`, an
/// `UtteranceEnd` or a `Finalize`'s answer ends the turn. A `Finalize` left unanswered
/// for [`FINALIZE_WAIT`] ends the turn with what was heard (finals, then the latest
/// interim text): Deepgram sends nothing when endpointing already finalised the words.
async fn turns(
    mut events: DeepgramEvents,
    mut finalized: mpsc::Receiver<()>,
    heard: mpsc::Sender<Result<ListenEvent, ProviderError>>,
) {
    let mut finals: Vec<String> = Vec::new();
    let mut interim = String::new();
    let mut finalize_by: Option<Instant> = None;
    loop {
        let deadline = finalize_by;
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return,
            },
            Some(()) = finalized.recv(), if finalize_by.is_none() => {
                finalize_by = Some(Instant::now() + FINALIZE_WAIT);
                continue;
            }
            () = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                finalize_by = None;
                if !interim.is_empty() {
                    finals.push(std::mem::take(&mut interim));
                }
                let text = std::mem::take(&mut finals).join(" ");
                if heard.send(Ok(ListenEvent::EndOfTurn(text))).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let out = match event {
            Err(error) => {
                let _ = heard.send(Err(error)).await;
                return;
            }
            Ok(SttEvent::SpeechStarted { .. }) => ListenEvent::SpeechStarted,
            Ok(SttEvent::Transcript {
                text,
                is_final,
                speech_final,
                from_finalize,
            }) => {
                if !is_final {
                    let mut shown = finals.clone();
                    shown.push(text.clone());
                    interim = text;
                    ListenEvent::Interim(shown.join(" "))
                } else {
                    interim.clear();
                    if !text.is_empty() {
                        finals.push(text);
                    }
                    if from_finalize || (speech_final && !finals.is_empty()) {
                        finalize_by = None;
                        ListenEvent::EndOfTurn(std::mem::take(&mut finals).join(" "))
                    } else {
                        ListenEvent::Interim(finals.join(" "))
                    }
                }
            }
            Ok(SttEvent::UtteranceEnd { .. }) if !finals.is_empty() => {
                finalize_by = None;
                ListenEvent::EndOfTurn(std::mem::take(&mut finals).join(" "))
            }
            Ok(SttEvent::UtteranceEnd { .. }) => continue,
            Ok(SttEvent::Metadata { .. } | SttEvent::Closed) => return,
        };
        if heard.send(Ok(out)).await.is_err() {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    keepalive: Duration,
    idle: Duration,
}

enum Command {
    Audio(Vec<u8>),
    Finalize,
    Close,
}

/// A live Deepgram stream. Dropping it sends `CloseStream`, closes the socket and ends
/// its task; [`DeepgramSession::split`] gives the sending and receiving halves to two
/// tasks.
#[derive(Debug)]
pub struct DeepgramSession {
    sender: DeepgramSender,
    events: DeepgramEvents,
}

/// The sending half of a session (cheap to clone). When every sender is dropped the
/// stream is closed as by [`DeepgramSender::close`]; events go on until `Closed`.
#[derive(Debug, Clone)]
pub struct DeepgramSender {
    commands: mpsc::Sender<Command>,
    failure: Arc<OnceLock<ProviderError>>,
}

/// The receiving half of a session. Dropping it ends the session.
#[derive(Debug)]
pub struct DeepgramEvents {
    events: mpsc::Receiver<Result<SttEvent, ProviderError>>,
}

impl DeepgramSession {
    fn start<S>(socket: S, timing: Timing, provider: String, cancel: CancellationToken) -> Self
    where
        S: Sink<Message, Error = WsError>
            + Stream<Item = Result<Message, WsError>>
            + Unpin
            + Send
            + 'static,
    {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
        let failure = Arc::new(OnceLock::new());
        let link = Link {
            commands: command_rx,
            events: event_tx,
            failure: failure.clone(),
        };
        tokio::spawn(drive(socket, link, timing, provider, cancel));
        Self {
            sender: DeepgramSender { commands, failure },
            events: DeepgramEvents { events },
        }
    }

    /// The two halves.
    pub fn split(self) -> (DeepgramSender, DeepgramEvents) {
        (self.sender, self.events)
    }

    /// Sends PCM16 audio (at the session's rate).
    pub async fn send_audio(&self, samples: &[i16]) -> Result<(), ProviderError> {
        self.sender.send_audio(samples).await
    }

    /// Asks Deepgram to transcribe what it holds now (`Finalize`).
    pub async fn finalize(&self) -> Result<(), ProviderError> {
        self.sender.finalize().await
    }

    /// Ends the stream (`CloseStream`).
    pub async fn close(&self) -> Result<(), ProviderError> {
        self.sender.close().await
    }

    /// The next event; `None` after the stream ended (or failed: the error comes first).
    pub async fn next_event(&mut self) -> Option<Result<SttEvent, ProviderError>> {
        self.events.next().await
    }
}

impl DeepgramSender {
    async fn command(&self, command: Command) -> Result<(), ProviderError> {
        self.commands.send(command).await.map_err(|_| {
            self.failure
                .get()
                .cloned()
                .unwrap_or_else(|| ProviderError::Unavailable("Deepgram session ended".into()))
        })
    }

    /// Sends PCM16 audio (at the session's rate). Waits while the socket is behind
    /// (bounded queue); fails with the session's error once it has ended.
    pub async fn send_audio(&self, samples: &[i16]) -> Result<(), ProviderError> {
        self.command(Command::Audio(pcm_bytes(samples))).await
    }

    /// Asks Deepgram to transcribe what it holds now (`Finalize`); the answer is a final
    /// transcript with `from_finalize`.
    pub async fn finalize(&self) -> Result<(), ProviderError> {
        self.command(Command::Finalize).await
    }

    /// Ends the stream (`CloseStream`): the last results, `Metadata` and `Closed` follow.
    pub async fn close(&self) -> Result<(), ProviderError> {
        self.command(Command::Close).await
    }
}

impl DeepgramEvents {
    /// The next event; `None` after the stream ended (or failed: the error comes first).
    pub async fn next(&mut self) -> Option<Result<SttEvent, ProviderError>> {
        self.events.recv().await
    }
}

/// The task's ends of the session's channels.
struct Link {
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Result<SttEvent, ProviderError>>,
    failure: Arc<OnceLock<ProviderError>>,
}

fn control(kind: &str) -> Message {
    Message::text(format!(r#"{{"type":"{kind}"}}"#))
}

/// The session's socket loop: commands out, events in, keep-alives, and the idle
/// watchdog. Deepgram may stay quiet while it hears silence, so a quarter of the idle
/// timeout into a quiet stretch with input unanswered a WebSocket ping goes out: only
/// when not even its pong comes back within the idle timeout is the socket dead.
async fn drive<S>(
    mut socket: S,
    link: Link,
    timing: Timing,
    provider: String,
    cancel: CancellationToken,
) where
    S: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin,
{
    let Link {
        mut commands,
        events,
        failure: failure_slot,
    } = link;
    let mut last_sent = Instant::now();
    // Since when a reply is owed (audio, Finalize or CloseStream sent, nothing since).
    let mut owed_since: Option<Instant> = None;
    let mut pinged = false;
    let mut closing = false;
    let result: Result<(), Failure> = loop {
        let keepalive_at = last_sent + timing.keepalive;
        let idle_at = owed_since.map(|t| t + timing.idle);
        let ping_at = owed_since.filter(|_| !pinged).map(|t| t + timing.idle / 4);
        tokio::select! {
            // Cancelled, or the owner dropped the session: say goodbye and stop.
            () = cancel.cancelled() => break Err(Failure::from(ProviderError::Cancelled)),
            () = events.closed() => break Err(Failure::from(ProviderError::Cancelled)),
            command = commands.recv(), if !closing => {
                let message = match command {
                    Some(Command::Audio(bytes)) => Message::binary(bytes),
                    Some(Command::Finalize) => control("Finalize"),
                    // Every sender gone: the same as an explicit close.
                    Some(Command::Close) | None => {
                        closing = true;
                        control("CloseStream")
                    }
                };
                if let Err(e) = socket.send(message).await {
                    break Err(ws::socket_failure(&provider, &e));
                }
                last_sent = Instant::now();
                owed_since.get_or_insert(last_sent);
            }
            message = socket.next() => match message {
                None if closing => {
                    let _ = events.send(Ok(SttEvent::Closed)).await;
                    break Ok(());
                }
                None => break Err(ws::close_failure(&provider, None)),
                Some(Err(e)) => break Err(ws::socket_failure(&provider, &e)),
                Some(Ok(Message::Text(text))) => {
                    owed_since = None;
                    pinged = false;
                    match parse_event(&text) {
                        Ok(Some(event)) => {
                            if events.send(Ok(event)).await.is_err() {
                                break Ok(());
                            }
                        }
                        Ok(None) => {}
                        Err(error) => break Err(Failure::from(error)),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let normal = frame.as_ref().is_none_or(|f| f.code == CloseCode::Normal);
                    if closing && normal {
                        let _ = events.send(Ok(SttEvent::Closed)).await;
                        break Ok(());
                    }
                    break Err(ws::close_failure(&provider, frame.as_ref()));
                }
                // A pong (or any frame): the socket is alive, Deepgram just has
                // nothing to say. Not after CloseStream, which Deepgram answers.
                Some(Ok(_)) => {
                    if !closing {
                        owed_since = None;
                        pinged = false;
                    }
                }
            },
            () = async { tokio::time::sleep_until(ping_at.unwrap_or(keepalive_at)).await }, if ping_at.is_some() => {
                pinged = true;
                if let Err(e) = socket.send(Message::Ping(Vec::new().into())).await {
                    break Err(ws::socket_failure(&provider, &e));
                }
            }
            () = tokio::time::sleep_until(keepalive_at), if !closing => {
                if let Err(e) = socket.send(control("KeepAlive")).await {
                    break Err(ws::socket_failure(&provider, &e));
                }
                last_sent = Instant::now();
            }
            () = async { tokio::time::sleep_until(idle_at.unwrap_or(keepalive_at)).await }, if idle_at.is_some() => {
                tracing::warn!(provider, "Deepgram sent nothing while results were owed");
                break Err(Failure::from(ProviderError::Timeout));
            }
        }
    };
    match result {
        Err(Failure {
            error: ProviderError::Cancelled,
            ..
        }) => {
            if !closing {
                let _ = socket.send(control("CloseStream")).await;
            }
        }
        Err(failure) => {
            let _ = failure_slot.set(failure.error.clone());
            let _ = events.try_send(Err(failure.error));
        }
        Ok(()) => {}
    }
    // Bounded: a peer that never answers the close handshake must not keep the task.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_become_events() {
        let results = r#"{"type":"Results","channel_index":[0,1],"duration":1.5,"start":0.0,"is_final":true,"speech_final":true,"from_finalize":false,"channel":{"alternatives":[{"transcript":"When do you open? ","confidence":0.98,"words":[]}]},"metadata":{"request_id":"r"}}"#;
        assert_eq!(
            parse_event(results).expect("parse"),
            Some(SttEvent::Transcript {
                text: "When do you open?".into(),
                is_final: true,
                speech_final: true,
                from_finalize: false
            })
        );
        assert_eq!(
            parse_event(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.395}"#)
                .expect("parse"),
            Some(SttEvent::UtteranceEnd {
                last_word_end_secs: 2.395
            })
        );
        assert_eq!(
            parse_event(r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":0.3}"#)
                .expect("parse"),
            Some(SttEvent::SpeechStarted { at_secs: 0.3 })
        );
        assert!(matches!(
            parse_event(r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"abc","sha256":"x","created":"2024-08-29T22:37:55.202Z","duration":0.0,"channels":0}"#),
            Ok(Some(SttEvent::Metadata { request_id })) if request_id == "abc"
        ));
        assert_eq!(parse_event(r#"{"type":"Something new"}"#), Ok(None));
        assert!(parse_event("not json").is_err());
        assert!(matches!(
            parse_event(r#"{"type":"Error","description":"Failed to decode audio","variant":"DATA-0000"}"#),
            Err(ProviderError::Unavailable(m)) if m.contains("decode audio")
        ));
    }

    #[test]
    fn the_url_carries_the_documented_parameters() {
        let url =
            DeepgramStt::listen_url(&DeepgramConfig::default(), 16_000, &Vocabulary::default())
                .expect("url");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        for (k, v) in [
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
            ("channels", "1"),
            ("interim_results", "true"),
            ("endpointing", "300"),
            ("utterance_end_ms", "1000"),
            ("vad_events", "true"),
            ("model", "nova-3"),
        ] {
            assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(
            url.as_str()
                .starts_with("wss://api.deepgram.com/v1/listen?")
        );
    }
}
