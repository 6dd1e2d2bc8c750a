//! Ports: the traits every provider implements (simulated, embedded models, cloud
//! clients). All calls are cancellable through a [`CancellationToken`] and return
//! typed [`ProviderError`]s. Futures are boxed so the traits stay object-safe.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
pub use tokio_util::sync::CancellationToken;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// The call took longer than its deadline.
    #[error("provider timed out")]
    Timeout,
    /// The caller cancelled (barge-in, session end).
    #[error("cancelled")]
    Cancelled,
    /// The provider could not be reached or answered 5xx.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx, bad input).
    #[error("provider rejected the request: {0}")]
    Rejected(String),
}

/// Per-frame voice activity detection for one stream.
pub trait Vad: Send {
    /// True when this frame (10–30 ms of PCM16 at the stream's rate) holds speech. A
    /// detector whose model is shared by many sessions resolves once its window is scored
    /// (a few ms); a local one is ready at once.
    fn is_speech<'a>(&'a mut self, frame: &'a [i16]) -> BoxFuture<'a, bool>;
}

/// Makes one [`Vad`] per session (detectors keep state).
pub trait VadFactory: Send + Sync {
    /// A detector for audio at `sample_rate`.
    fn create(&self, sample_rate: u32) -> Box<dyn Vad>;
}

/// One utterance to transcribe.
#[derive(Debug, Clone)]
pub struct SttRequest {
    /// PCM16 mono.
    pub audio: Arc<[i16]>,
    /// Its sample rate.
    pub sample_rate: u32,
    /// Words to expect: the dealership's names (Whisper's initial prompt, Deepgram key
    /// terms); empty for none.
    pub vocabulary: Vocabulary,
}

/// Words and names a recognizer should expect in this conversation — a dealership's
/// models and trims, staff, departments and streets — most important first. Cheap to
/// clone (shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary(Arc<[String]>);

impl Vocabulary {
    /// The terms, most important first.
    pub fn new(terms: Vec<String>) -> Self {
        Self(terms.into())
    }

    /// The terms, most important first.
    pub fn terms(&self) -> &[String] {
        &self.0
    }

    /// No terms.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The terms as a recognizer's prompt ("Aurora, Meridian, Port Ellery."), at most
    /// `max_chars` characters (whole terms only); empty when none fits.
    pub fn prompt(&self, max_chars: usize) -> String {
        let terms = self.within(max_chars.saturating_sub(1));
        if terms.is_empty() {
            return String::new();
        }
        format!("{}.", terms.join(", "))
    }

    /// The first terms that fit in `max_chars` when joined with ", ".
    pub fn within(&self, max_chars: usize) -> Vec<&str> {
        let mut used = 0;
        let mut out = Vec::new();
        for term in self.0.iter() {
            let cost = term.chars().count() + if out.is_empty() { 0 } else { 2 };
            if used + cost > max_chars {
                break;
            }
            used += cost;
            out.push(term.as_str());
        }
        out
    }
}

/// Speech to text.
pub trait SpeechToText: Send + Sync {
    /// Transcribes a whole utterance; `partial` receives the text so far (each one
    /// replaces the previous) when the provider has interim results.
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;
}

/// What a listening speech-to-text stream is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenInput {
    /// The next PCM16 mono audio, at the stream's rate.
    Audio(Vec<i16>),
    /// End the utterance under way now (a manual commit): its final text follows as
    /// [`ListenEvent::EndOfTurn`].
    Finalize,
}

/// What a listening speech-to-text stream hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEvent {
    /// Speech began.
    SpeechStarted,
    /// The utterance's text so far (interim: it replaces the previous one).
    Interim(String),
    /// The provider decided the utterance is over; its final text (may be empty).
    EndOfTurn(String),
}

/// A live stream to a [`ListeningStt`]. Dropping `audio` closes it.
#[derive(Debug)]
pub struct Listening {
    /// Audio and commands to the provider.
    pub audio: mpsc::Sender<ListenInput>,
    /// What it hears, in order; an error (or the end of the channel) means the stream is
    /// gone.
    pub events: mpsc::Receiver<Result<ListenEvent, ProviderError>>,
}

/// Speech to text that listens to the whole conversation and decides itself where the
/// customer's turn ends (Deepgram's endpointing). Optional: without it, turns end on the
/// local VAD's silence and each utterance goes to [`SpeechToText`].
pub trait ListeningStt: Send + Sync {
    /// Opens a stream for audio at `sample_rate`, biased towards `vocabulary`; it ends
    /// when `cancel` fires.
    fn listen(
        &self,
        sample_rate: u32,
        vocabulary: Vocabulary,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Listening, ProviderError>>;
}

/// A passage retrieved from the dealership's documents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Passage {
    /// Document id.
    pub document_id: String,
    /// Document title or file name.
    pub title: String,
    /// The text.
    pub text: String,
    /// Similarity score.
    pub score: f32,
    /// Page, when known.
    pub page: Option<u32>,
}

/// One earlier exchange, for conversational context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContextTurn {
    /// What the customer said.
    pub user: String,
    /// What the assistant said (as spoken).
    pub assistant: String,
}

/// Everything the answer engine needs for one reply.
#[derive(Debug, Clone)]
pub struct AnswerRequest {
    /// Dealership id.
    pub tenant: String,
    /// The question as the customer said it.
    pub question: String,
    /// The question as a standalone search: a follow-up ("and on Sunday?") joined with
    /// the question before it; otherwise the question itself.
    pub search_query: String,
    /// Recent turns, oldest first.
    pub history: Vec<ContextTurn>,
    /// System prompt / persona.
    pub persona: String,
    /// The dealership's IANA time zone ("" = UTC): what "today" and "tomorrow" mean.
    pub timezone: String,
    /// Retrieved passages to ground the answer.
    pub passages: Vec<Passage>,
}

/// Token accounting of one answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerUsage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Indexes into the request's passages that the answer rests on; `None` when the
    /// engine does not say (every passage is cited). `Some(empty)` means the answer used
    /// no passage (small talk, "I don't have that information"): nothing is cited and the
    /// answer is not kept in the semantic cache.
    pub cited: Option<Vec<usize>>,
    /// The documents did not answer the question (the honest "I don't have that
    /// information"): the turn is listed as a knowledge gap for the dealership's admins.
    pub unanswered: bool,
}

/// Streams an answer (RAG + LLM).
pub trait AnswerEngine: Send + Sync {
    /// Sends answer text pieces to `tokens` as they are generated.
    fn answer<'a>(
        &'a self,
        request: AnswerRequest,
        tokens: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<AnswerUsage, ProviderError>>;

    /// Gets ready to answer from the passages of a newly indexed document (the grounded
    /// engine embeds their sentences now, not during a customer's first question about
    /// them). Nothing by default.
    fn prepare<'a>(&'a self, passages: Vec<Passage>) -> BoxFuture<'a, ()> {
        let _ = passages;
        Box::pin(async {})
    }
}

/// Text embeddings.
pub trait Embedder: Send + Sync {
    /// One vector per text.
    fn embed<'a>(
        &'a self,
        texts: Vec<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, ProviderError>>;
    /// Vector dimension.
    fn dimension(&self) -> usize;
}

/// Semantic search over a dealership's documents.
pub trait Retriever: Send + Sync {
    /// Top `k` passages of `tenant` for the query.
    fn retrieve<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        embedding: &'a [f32],
        k: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<Passage>, ProviderError>>;
}

/// When a word is spoken, relative to the start of its sentence's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTiming {
    /// The word.
    pub word: String,
    /// Start, ms.
    pub start_ms: u32,
    /// End, ms.
    pub end_ms: u32,
    /// Mouth shapes inside the word from the synthesizer's phoneme timings, same clock;
    /// empty when the provider has none (the avatar then derives them from the letters).
    pub visemes: Vec<VisemeTiming>,
}

/// One mouth shape (Oculus viseme name: `PP`, `FF`, `aa`, `sil`, …) with its timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisemeTiming {
    /// Viseme name.
    pub viseme: String,
    /// Start, ms.
    pub start_ms: u32,
    /// End, ms.
    pub end_ms: u32,
}

/// A piece of synthesized audio.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsChunk {
    /// PCM16 mono.
    pub samples: Vec<i16>,
    /// Its sample rate.
    pub sample_rate: u32,
    /// Word timings inside this chunk's sentence (may be empty).
    pub words: Vec<WordTiming>,
}

/// What to say.
#[derive(Debug, Clone)]
pub struct TtsRequest {
    /// One sentence.
    pub text: String,
    /// Voice name.
    pub voice: String,
}

/// Text to speech.
pub trait TextToSpeech: Send + Sync {
    /// Sends audio chunks of `request.text` to `out` as they are synthesized.
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// A dealership's avatar choice, resolved against the node's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarSettings {
    /// `builtin` (drawn by the web client from `avatar.viseme`) or a remote renderer
    /// (`heygen`).
    pub provider: String,
    /// The remote renderer's avatar; `None`: its configured default.
    pub avatar_id: Option<String>,
}

impl Default for AvatarSettings {
    fn default() -> Self {
        Self {
            provider: "builtin".into(),
            avatar_id: None,
        }
    }
}

/// What a browser needs to show a remote avatar: the room it streams into (sent to the
/// client as `avatar.stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarStream {
    /// Renderer (`heygen`).
    pub provider: String,
    /// LiveKit server URL.
    pub livekit_url: String,
    /// LiveKit access token of the browser's participant.
    pub access_token: String,
}

/// Starts remote avatars (e.g. HeyGen). The built-in avatar is drawn by the web client
/// from viseme events and starts nothing here.
pub trait AvatarBackend: Send + Sync {
    /// Starts the remote avatar of `session_id` as `settings` ask; `Ok(None)` when they
    /// name no remote renderer. Resolves once the avatar is ready to take audio.
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        settings: &'a AvatarSettings,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>>;
}

/// One session's running remote avatar: it gets the audio of every response it speaks.
/// Calls only queue work and return at once (they never block an actor's mailbox); an
/// error means the avatar is gone. Dropping it stops it, like [`RemoteAvatar::stop`].
pub trait RemoteAvatar: Send {
    /// Where the browser watches it.
    fn stream(&self) -> AvatarStream;
    /// The next piece of `response_id`'s audio (PCM16 mono at `sample_rate`), as it is
    /// produced.
    fn audio(
        &mut self,
        response_id: &str,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), ProviderError>;
    /// All of `response_id`'s audio was given.
    fn end_of_response(&mut self, response_id: &str) -> Result<(), ProviderError>;
    /// Stop talking at once and drop the audio not yet spoken (barge-in, cancel).
    fn interrupt(&mut self) -> Result<(), ProviderError>;
    /// Resolves when the avatar fails on its own (dead connection, ended by the vendor).
    fn failed(&self) -> BoxFuture<'static, ProviderError>;
    /// Ends it (the session is over).
    fn stop(self: Box<Self>) -> BoxFuture<'static, Result<(), ProviderError>>;
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Fully spoken.
    Completed,
    /// Cut short (barge-in, `response.cancel`, disconnect).
    Cancelled,
    /// A provider or actor failed.
    Failed,
}

/// The work one turn cost: what the dealership is metered on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnUsage {
    /// Seconds of the customer's speech transcribed.
    pub stt_seconds: f64,
    /// Language-model prompt tokens (0 for answers the embedded engine or a cache gave).
    pub prompt_tokens: u64,
    /// Language-model completion tokens.
    pub completion_tokens: u64,
    /// Characters sent to speech synthesis.
    pub tts_characters: u64,
    /// Seconds of audio received from the customer (since the previous turn).
    pub audio_in_seconds: f64,
    /// Seconds of answer audio played to the customer.
    pub audio_out_seconds: f64,
}

impl TurnUsage {
    /// True when nothing was used.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Stage timings of one response, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMetrics {
    /// End of speech → final transcript.
    pub stt_ms: Option<f64>,
    /// Final transcript → first answer token.
    pub answer_first_token_ms: Option<f64>,
    /// First answer token → first audio out.
    pub tts_first_audio_ms: Option<f64>,
    /// End of speech → first audio out.
    pub voice_to_voice_ms: Option<f64>,
    /// Answer came from the semantic cache.
    pub cache_hit: bool,
}

/// A session as the transcript store sees it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Id of the session.
    pub session_id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub tenant: String,
    /// Signed-in user, if any.
    pub user_id: Option<String>,
    /// `websocket` or `webrtc`.
    pub transport: String,
}

/// One finished turn.
#[derive(Debug, Clone)]
pub struct TurnRecord {
    /// Id of the session it concerns.
    pub session_id: String,
    /// Position from 0.
    pub seq: u32,
    /// What the customer said.
    pub user_text: String,
    /// What the assistant actually said.
    pub assistant_text: String,
    /// The documents did not answer it (a knowledge gap).
    pub unanswered: bool,
    /// How it ended.
    pub status: ResponseStatus,
    /// Sources.
    pub citations: Vec<Passage>,
    /// Voice-to-voice latency.
    pub latency_ms: Option<f64>,
    /// Stage timings.
    pub metrics: ResponseMetrics,
    /// When each stage happened, by the wall clock (traces).
    pub timeline: TurnTimeline,
    /// The work it cost.
    pub usage: TurnUsage,
}

/// When a turn's stages happened, by the wall clock: the spans of its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnTimeline {
    /// The customer stopped speaking (`None` for a typed question).
    pub speech_end: Option<std::time::SystemTime>,
    /// The transcript was final (the answer began).
    pub transcript: std::time::SystemTime,
    /// The first answer token.
    pub first_token: Option<std::time::SystemTime>,
    /// The first answer audio went out.
    pub audio_started: Option<std::time::SystemTime>,
    /// The response ended.
    pub ended: std::time::SystemTime,
}

/// Where transcripts go (the database, in the server).
pub trait TranscriptSink: Send + Sync {
    /// A session began.
    fn session_started(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), String>>;
    /// A turn ended (completed, cancelled or failed).
    fn turn_finished(&self, record: TurnRecord) -> BoxFuture<'_, Result<(), String>>;
    /// The session ended; `usage` is what it used after its last turn (audio heard
    /// that started no answer).
    fn session_ended<'a>(
        &'a self,
        session_id: &'a str,
        reason: &'a str,
        usage: TurnUsage,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The provider set one node runs with.
#[derive(Clone)]
pub struct Providers {
    /// Voice activity detection.
    pub vad: Arc<dyn VadFactory>,
    /// Speech to text.
    pub stt: Arc<dyn SpeechToText>,
    /// A provider that decides where turns end (`None`: the local VAD does).
    pub listening: Option<Arc<dyn ListeningStt>>,
    /// Answers.
    pub answer: Arc<dyn AnswerEngine>,
    /// Turns questions and passages into vectors.
    pub embedder: Arc<dyn Embedder>,
    /// Retrieval.
    pub retriever: Arc<dyn Retriever>,
    /// Text to speech.
    pub tts: Arc<dyn TextToSpeech>,
    /// Remote avatars (starts none for the built-in one).
    pub avatar: Arc<dyn AvatarBackend>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").finish_non_exhaustive()
    }
}

/// A transcript sink that keeps nothing (tests and tools).
#[derive(Debug, Default)]
pub struct NullSink;

impl TranscriptSink for NullSink {
    fn session_started(&self, _: SessionRecord) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn turn_finished(&self, _: TurnRecord) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn session_ended<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: TurnUsage,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}
