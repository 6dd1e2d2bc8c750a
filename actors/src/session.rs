//! `Session`: supervisor of one conversation. Routes audio to `SttStream`, starts a
//! `Turn` per user turn, feeds sentences to `TtsStream` and timings (and, with a remote
//! avatar, the answer audio) to `AvatarController`, handles barge-in, and keeps the
//! session context cache (recent turns, persona, settings). Child failures are restarted
//! within a budget; a failed turn ends with an error event and an apology; transcripts go
//! to the sink.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::avatar::{AvatarArgs, AvatarController, AvatarEvent, AvatarMsg};
use crate::events::{
    ClientEvent, ResponseRef, ResponseSummary, ServerEvent, SessionInfo, SessionUpdate,
    TurnDetection,
};
use crate::metrics::AliveGuard;
use crate::outbox::Outbox;
use crate::ports::{
    AvatarSettings, CancellationToken, ContextTurn, Passage, ProviderError, ResponseMetrics,
    ResponseStatus, SessionRecord, TurnRecord, TurnTimeline, TurnUsage, WordTiming,
};
use crate::shared::Shared;
use crate::stt_stream::{SttArgs, SttEvent, SttMsg, SttStream};
use crate::tasks::uuid_like;
use crate::tts_stream::{TtsArgs, TtsEvent, TtsMsg, TtsStream};
use crate::turn::{Turn, TurnArgs, TurnEvent, TurnMsg};

/// Per-session settings (defaults from config, changed by `session.update`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Input PCM rate.
    pub input_sample_rate: u32,
    /// Output PCM rate.
    pub output_sample_rate: u32,
    /// Voice.
    pub voice: String,
    /// End of turn detection.
    pub turn_detection: TurnDetection,
    /// Persona / system prompt.
    pub persona: String,
    /// The dealership's IANA time zone ("" = UTC): its "today" and "tomorrow".
    pub timezone: String,
    /// The dealership's avatar (a remote one is started with the session).
    pub avatar: AvatarSettings,
    /// Turns kept as context.
    pub history_turns: usize,
    /// Child restarts allowed per window before the session closes.
    pub restart_limit: usize,
    /// The window.
    pub restart_window: Duration,
    /// Deadline for one transcription.
    pub stt_timeout: Duration,
    /// Silence after which transcription starts before the turn is over (0: off).
    pub early_transcription_ms: u32,
    /// Deadline for a whole answer.
    pub answer_timeout: Duration,
    /// Passages retrieved per question.
    pub retrieval_top_k: usize,
    /// The transport fixes the sample rates (WebRTC: Opus at 48 kHz); `session.update`
    /// may not change them.
    pub fixed_sample_rates: bool,
    /// Longest conversation (`None`: no limit): then the answer in progress finishes and
    /// the session closes with `session_limit` (1008).
    pub max_duration: Option<Duration>,
    /// Answers that may start per minute (0: no limit). More get `rate_limited` error
    /// events; twice as many close the session (1008).
    pub turns_per_minute: u32,
    /// Characters of each side of a turn kept in the transcript (0: all).
    pub max_stored_chars: usize,
    /// Say this, then close with `usage_cap_reached` (1013): the dealership reached a
    /// usage cap after this session was granted.
    pub closing_notice: Option<String>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            input_sample_rate: 16_000,
            output_sample_rate: 24_000,
            voice: "default".into(),
            turn_detection: TurnDetection {
                silence_duration_ms: 500,
                min_speech_ms: 200,
                max_turn_ms: 30_000,
            },
            persona: String::new(),
            timezone: String::new(),
            avatar: AvatarSettings::default(),
            history_turns: 6,
            restart_limit: 3,
            restart_window: Duration::from_secs(10),
            stt_timeout: Duration::from_secs(15),
            early_transcription_ms: 0,
            answer_timeout: Duration::from_secs(30),
            retrieval_top_k: 4,
            fixed_sample_rates: false,
            max_duration: None,
            turns_per_minute: 0,
            max_stored_chars: 0,
            closing_notice: None,
        }
    }
}

/// Arguments of one session.
pub struct SessionArgs {
    /// Session id.
    pub id: String,
    /// Dealership.
    pub tenant: String,
    /// Signed-in user, if any.
    pub user_id: Option<String>,
    /// `websocket` or `webrtc`.
    pub transport: String,
    /// Settings.
    pub settings: SessionSettings,
    /// Towards the client.
    pub outbox: Outbox,
    /// Node-wide handles.
    pub shared: Arc<Shared>,
}

/// The children, for fault injection and supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// SttStream.
    Stt,
    /// The current Turn.
    Turn,
    /// TtsStream.
    Tts,
    /// AvatarController.
    Avatar,
}

impl ChildKind {
    fn label(self) -> &'static str {
        match self {
            ChildKind::Stt => "stt",
            ChildKind::Turn => "turn",
            ChildKind::Tts => "tts",
            ChildKind::Avatar => "avatar",
        }
    }
}

/// A snapshot for admin views and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    /// Session id.
    pub id: String,
    /// Dealership.
    pub tenant: String,
    /// Signed-in user, if any.
    pub user_id: Option<String>,
    /// Turns completed or cut.
    pub turns: u32,
    /// A response is in progress.
    pub responding: bool,
    /// Context turns held.
    pub context: Vec<ContextTurn>,
}

/// Input from the transport.
pub enum ClientInput {
    /// PCM16 at the input rate.
    Audio(Vec<i16>),
    /// A parsed client event.
    Event(ClientEvent),
}

/// Lifecycle, admin views and fault injection.
pub enum Control {
    /// End the session (client left, admin, drain deadline).
    End {
        /// Why.
        reason: String,
        /// Close code for the transport.
        code: u16,
    },
    /// Server shutdown: finish the answer in progress, start no new one, then close (1001).
    Drain {
        /// Why.
        reason: String,
    },
    /// The session reached its longest allowed duration.
    TimeUp,
    /// A snapshot for admin views and tests.
    Snapshot(RpcReplyPort<SessionSnapshot>),
    /// Fault injection: make a child panic (tests only; no transport exposes it).
    InjectPanic(ChildKind),
    /// Fault injection: make the session actor itself panic (tests only).
    PanicSelf,
}

/// A session's messages, grouped by sender: each child reports through its own event
/// type and knows nothing of this one.
pub enum SessionMsg {
    /// From the transport.
    Client(ClientInput),
    /// From `SttStream`.
    Stt(SttEvent),
    /// From the current `Turn`.
    Turn(TurnEvent),
    /// From `TtsStream`.
    Tts(TtsEvent),
    /// From `AvatarController`.
    Avatar(AvatarEvent),
    /// From the registry, the session's own timers, admin and tests.
    Control(Control),
}

/// Lets a child hold a `DerivedActorRef` of its own event type: `From` wraps the event,
/// `TryFrom` gives it back when the send fails.
macro_rules! child_events {
    ($($event:ty => $variant:ident),* $(,)?) => {$(
        impl From<$event> for SessionMsg {
            fn from(event: $event) -> Self {
                SessionMsg::$variant(event)
            }
        }

        impl TryFrom<SessionMsg> for $event {
            type Error = SessionMsg;

            fn try_from(msg: SessionMsg) -> Result<Self, SessionMsg> {
                match msg {
                    SessionMsg::$variant(event) => Ok(event),
                    other => Err(other),
                }
            }
        }
    )*};
}

child_events!(
    SttEvent => Stt,
    TurnEvent => Turn,
    TtsEvent => Tts,
    AvatarEvent => Avatar,
);

struct Response {
    id: String,
    seq: u32,
    user_text: String,
    cancel: CancellationToken,
    turn: Option<ActorRef<TurnMsg>>,
    speech_end_at: Option<Instant>,
    transcript_at: Instant,
    first_token_at: Option<Instant>,
    audio_started_at: Option<Instant>,
    answer_text: String,
    words: Vec<WordTiming>,
    citations: Vec<Passage>,
    cache_hit: bool,
    /// The documents did not answer it (a knowledge gap).
    unanswered: bool,
    turn_done: bool,
    /// A sentence went to TTS: the client may hold audio of this response.
    spoke: bool,
    /// The answer failed: the apology is being spoken, then it ends `failed`.
    failed: bool,
    /// The remote avatar speaks it (it was ready when the response began).
    to_avatar: bool,
    /// Characters sent to speech synthesis.
    tts_characters: u64,
    /// Language-model tokens (prompt, completion).
    tokens: (u64, u64),
}

/// The session actor.
pub struct Session;

/// Its state.
pub struct SessionState {
    id: String,
    tenant: String,
    user_id: Option<String>,
    settings: SessionSettings,
    outbox: Outbox,
    shared: Arc<Shared>,
    stt: ActorRef<SttMsg>,
    tts: ActorRef<TtsMsg>,
    avatar: ActorRef<AvatarMsg>,
    current: Option<Response>,
    history: VecDeque<ContextTurn>,
    pending_text: Option<String>,
    seq: u32,
    failures: HashMap<ChildKind, VecDeque<Instant>>,
    ended: bool,
    cancel: CancellationToken,
    speech_ends: HashMap<String, Instant>,
    end_reason: Option<String>,
    /// Closing once no answer is in progress: the reason and close code.
    draining: Option<(String, u16)>,
    /// The remote avatar is ready and speaks new responses.
    remote_avatar: bool,
    /// Work done since the last turn was recorded (audio heard, speech transcribed).
    unbilled: TurnUsage,
    /// Audio position where the customer's current utterance began, ms.
    speech_start_ms: Option<u64>,
    /// When recent answers started, and recent refusals (turn rate limit).
    turn_starts: VecDeque<Instant>,
    turn_refusals: VecDeque<Instant>,
    /// The timer of `max_duration`.
    time_limit: Option<tokio::task::AbortHandle>,
    _alive: AliveGuard,
}

/// The first `max` characters of `text` (all of it when `max` is 0).
fn clip(mut text: String, max: usize) -> String {
    if max > 0
        && let Some((cut, _)) = text.char_indices().nth(max)
    {
        text.truncate(cut);
    }
    text
}

const APOLOGY: &str = "Sorry, something went wrong on my side. Could you say that again?";

fn ms_between(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64() * 1000.0
}

impl SessionState {
    fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            input_sample_rate: self.settings.input_sample_rate,
            output_sample_rate: self.settings.output_sample_rate,
            voice: self.settings.voice.clone(),
            turn_detection: self.settings.turn_detection.clone(),
        }
    }

    fn is_current(&self, response_id: &str) -> bool {
        self.current.as_ref().is_some_and(|r| r.id == response_id)
    }

    fn child_kind(&self, cell: &ActorCell) -> Option<ChildKind> {
        let id = cell.get_id();
        if id == self.stt.get_id() {
            Some(ChildKind::Stt)
        } else if id == self.tts.get_id() {
            Some(ChildKind::Tts)
        } else if id == self.avatar.get_id() {
            Some(ChildKind::Avatar)
        } else if self
            .current
            .as_ref()
            .and_then(|r| r.turn.as_ref())
            .is_some_and(|t| t.get_id() == id)
        {
            Some(ChildKind::Turn)
        } else {
            None
        }
    }

    fn stt_args(&self, myself: &ActorRef<SessionMsg>) -> SttArgs {
        SttArgs {
            session_id: self.id.clone(),
            report: myself.get_derived(),
            sample_rate: self.settings.input_sample_rate,
            turn_detection: self.settings.turn_detection.clone(),
            shared: self.shared.clone(),
            timeout: self.settings.stt_timeout,
            early_transcription_ms: self.settings.early_transcription_ms,
        }
    }

    fn tts_args(&self, myself: &ActorRef<SessionMsg>) -> TtsArgs {
        TtsArgs {
            report: myself.get_derived(),
            output_sample_rate: self.settings.output_sample_rate,
            voice: self.settings.voice.clone(),
            shared: self.shared.clone(),
            outbox: self.outbox.clone(),
        }
    }

    fn avatar_args(&self, myself: &ActorRef<SessionMsg>) -> AvatarArgs {
        AvatarArgs {
            session_id: self.id.clone(),
            report: myself.get_derived(),
            settings: self.settings.avatar.clone(),
            outbox: self.outbox.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn start_response(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        user_text: String,
        speech_end_at: Option<Instant>,
    ) {
        if self.draining.is_some() {
            // Shutting down: the customer is told to reconnect elsewhere instead.
            return;
        }
        if !self.turn_allowed(myself) {
            return;
        }
        if self.current.is_some() {
            self.cancel_response(ResponseStatus::Cancelled);
        }
        let response_id = format!("resp_{}", uuid_like());
        let cancel = self.cancel.child_token();
        let args = TurnArgs {
            report: myself.get_derived(),
            session_id: self.id.clone(),
            response_id: response_id.clone(),
            tenant: self.tenant.clone(),
            question: user_text.clone(),
            history: self.history.iter().cloned().collect(),
            persona: self.settings.persona.clone(),
            timezone: self.settings.timezone.clone(),
            shared: self.shared.clone(),
            cancel: cancel.clone(),
            timeout: self.settings.answer_timeout,
            top_k: self.settings.retrieval_top_k,
        };
        let turn = match Actor::spawn_linked(None, Turn, args, myself.get_cell()).await {
            Ok((turn, _)) => Some(turn),
            Err(e) => {
                tracing::error!(session_id = %self.id, %response_id, error = %e, "turn failed to start");
                None
            }
        };
        self.outbox.event(ServerEvent::ResponseCreated {
            response: ResponseRef {
                id: response_id.clone(),
                status: "in_progress".into(),
            },
        });
        let seq = self.seq;
        self.seq += 1;
        self.current = Some(Response {
            id: response_id.clone(),
            seq,
            user_text,
            cancel,
            turn: turn.clone(),
            speech_end_at,
            transcript_at: Instant::now(),
            first_token_at: None,
            audio_started_at: None,
            answer_text: String::new(),
            words: Vec::new(),
            citations: Vec::new(),
            cache_hit: false,
            unanswered: false,
            turn_done: false,
            spoke: false,
            failed: false,
            to_avatar: self.remote_avatar,
            tts_characters: 0,
            tokens: (0, 0),
        });
        if turn.is_none() {
            self.fail_response(&response_id, "turn_failed", "could not start the answer");
        }
    }

    /// Text the customer actually heard: words whose audio has started playing.
    fn spoken_text(resp: &Response) -> String {
        let Some(started) = resp.audio_started_at else {
            return String::new();
        };
        let played_ms = started.elapsed().as_millis() as u32;
        resp.words
            .iter()
            .filter(|w| w.start_ms <= played_ms)
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Stops the current response now: cancels the turn, TTS and queued audio.
    fn cancel_response(&mut self, status: ResponseStatus) {
        let Some(resp) = self.current.as_ref() else {
            return;
        };
        // Cancel first: the TTS worker checks this token before every frame, so at most
        // one frame can be in flight once `cleared` is queued.
        resp.cancel.cancel();
        if let Some(turn) = &resp.turn {
            turn.stop(None);
        }
        let _ = self.tts.cast(TtsMsg::Cancel {
            response_id: resp.id.clone(),
        });
        let _ = self.avatar.cast(AvatarMsg::Cancel);
        // The TTS worker announces audio itself, so `audio_started_at` may lag: clear
        // whenever anything was sent to be spoken.
        if resp.spoke || resp.audio_started_at.is_some() {
            self.outbox.event(ServerEvent::OutputAudioCleared {
                response_id: resp.id.clone(),
            });
        }
        let text = Self::spoken_text(resp);
        self.finish_response(status, text);
    }

    /// The answer failed: the customer gets an `error` event and hears a short apology
    /// (what was queued of the answer is dropped), then the response ends `failed`. When
    /// speech output itself failed (`tts_…` codes), or the apology fails too, the apology
    /// is only written and the response ends at once.
    fn fail_response(&mut self, response_id: &str, code: &str, message: &str) {
        if !self.is_current(response_id) {
            return;
        }
        self.outbox.event(ServerEvent::error(code, message));
        let apologising = self.current.as_ref().is_some_and(|r| r.failed);
        // A broken voice cannot say sorry: then the apology is only written.
        let voice_works = !code.starts_with("tts_");
        if !apologising {
            self.outbox.event(ServerEvent::OutputTextDelta {
                response_id: response_id.to_owned(),
                delta: APOLOGY.into(),
            });
        }
        if let Some(resp) = self.current.as_mut() {
            resp.cancel.cancel();
            if let Some(turn) = resp.turn.take() {
                turn.stop(None);
            }
        }
        let _ = self.tts.cast(TtsMsg::Cancel {
            response_id: response_id.to_owned(),
        });
        let _ = self.avatar.cast(AvatarMsg::Cancel);
        if self
            .current
            .as_ref()
            .is_some_and(|r| r.spoke || r.audio_started_at.is_some())
        {
            self.outbox.event(ServerEvent::OutputAudioCleared {
                response_id: response_id.to_owned(),
            });
        }
        if apologising || !voice_works || self.draining.is_some() {
            self.finish_response(ResponseStatus::Failed, APOLOGY.into());
            return;
        }
        let cancel = self.cancel.child_token();
        let mut to_avatar = false;
        if let Some(resp) = self.current.as_mut() {
            resp.failed = true;
            resp.turn_done = true;
            resp.spoke = true;
            resp.words.clear();
            resp.answer_text = APOLOGY.into();
            resp.tts_characters += APOLOGY.chars().count() as u64;
            resp.cancel = cancel.clone();
            to_avatar = resp.to_avatar;
        }
        let _ = self.tts.cast(TtsMsg::Speak {
            response_id: response_id.to_owned(),
            text: APOLOGY.into(),
            cancel,
            to_avatar,
        });
        let _ = self.tts.cast(TtsMsg::EndOfResponse {
            response_id: response_id.to_owned(),
        });
    }

    fn finish_response(&mut self, status: ResponseStatus, output_text: String) {
        let Some(resp) = self.current.take() else {
            return;
        };
        let metrics = &self.shared.metrics;
        let mut m = ResponseMetrics {
            cache_hit: resp.cache_hit,
            ..ResponseMetrics::default()
        };
        if let Some(end) = resp.speech_end_at {
            m.stt_ms = Some(ms_between(end, resp.transcript_at));
            if let Some(audio) = resp.audio_started_at {
                m.voice_to_voice_ms = Some(ms_between(end, audio));
            }
        }
        if let Some(first) = resp.first_token_at {
            m.answer_first_token_ms = Some(ms_between(resp.transcript_at, first));
            if let Some(audio) = resp.audio_started_at {
                m.tts_first_audio_ms = Some(ms_between(first, audio));
            }
        }
        let heard = std::mem::take(&mut self.unbilled);
        let usage = TurnUsage {
            stt_seconds: heard.stt_seconds,
            audio_in_seconds: heard.audio_in_seconds,
            prompt_tokens: resp.tokens.0,
            completion_tokens: resp.tokens.1,
            tts_characters: resp.tts_characters,
            audio_out_seconds: resp
                .audio_started_at
                .map_or(0.0, |at| at.elapsed().as_secs_f64()),
        };
        metrics
            .responses
            .with_label_values(&[status_label(status)])
            .inc();
        self.outbox.event(ServerEvent::ResponseDone {
            response: ResponseSummary {
                id: resp.id.clone(),
                status,
                output_text: output_text.clone(),
                citations: resp.citations.clone(),
                metrics: m.clone(),
                usage: usage.clone(),
            },
        });
        if status != ResponseStatus::Failed {
            self.history.push_back(ContextTurn {
                user: resp.user_text.clone(),
                assistant: output_text.clone(),
            });
            while self.history.len() > self.settings.history_turns {
                self.history.pop_front();
            }
        }
        let (now, wall_now) = (Instant::now(), std::time::SystemTime::now());
        let wall = |at: Instant| wall_now - now.saturating_duration_since(at);
        let keep = self.settings.max_stored_chars;
        let record = TurnRecord {
            session_id: self.id.clone(),
            seq: resp.seq,
            user_text: clip(resp.user_text, keep),
            assistant_text: clip(output_text, keep),
            // An interrupted "I don't know" still marks a gap; a failed answer does not.
            unanswered: resp.unanswered && status != ResponseStatus::Failed,
            status,
            citations: resp.citations,
            latency_ms: m.voice_to_voice_ms,
            metrics: m,
            timeline: TurnTimeline {
                speech_end: resp.speech_end_at.map(wall),
                transcript: wall(resp.transcript_at),
                first_token: resp.first_token_at.map(wall),
                audio_started: resp.audio_started_at.map(wall),
                ended: wall_now,
            },
            usage,
        };
        let sink = self.shared.sink.clone();
        // Saved off the mailbox; the task outlives the session if the client is gone.
        tokio::spawn(async move {
            let (session_id, seq) = (record.session_id.clone(), record.seq);
            if let Err(e) = sink.turn_finished(record).await {
                tracing::error!(%session_id, seq, error = %e, "saving a turn failed");
            }
        });
    }

    async fn restart_child(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        kind: ChildKind,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let window = self.settings.restart_window;
        let failures = self.failures.entry(kind).or_default();
        failures.retain(|t| now.duration_since(*t) < window);
        failures.push_back(now);
        if failures.len() > self.settings.restart_limit {
            tracing::warn!(session_id = %self.id, child = kind.label(), "restart limit reached; closing session");
            self.end(myself, "child_restart_limit", 1011);
            return Ok(());
        }
        self.shared
            .metrics
            .restarts
            .with_label_values(&[kind.label()])
            .inc();
        match kind {
            ChildKind::Stt => {
                let (stt, _) =
                    Actor::spawn_linked(None, SttStream, self.stt_args(myself), myself.get_cell())
                        .await?;
                self.stt = stt;
            }
            ChildKind::Tts => {
                let (tts, _) =
                    Actor::spawn_linked(None, TtsStream, self.tts_args(myself), myself.get_cell())
                        .await?;
                self.tts = tts;
            }
            ChildKind::Avatar => {
                let (avatar, _) = Actor::spawn_linked(
                    None,
                    AvatarController,
                    self.avatar_args(myself),
                    myself.get_cell(),
                )
                .await?;
                self.avatar = avatar;
            }
            ChildKind::Turn => {}
        }
        Ok(())
    }

    fn end(&mut self, myself: &ActorRef<SessionMsg>, reason: &str, code: u16) {
        if self.ended {
            return;
        }
        self.cancel_response(ResponseStatus::Cancelled);
        self.ended = true;
        self.end_reason = Some(reason.to_owned());
        self.cancel.cancel();
        self.outbox.close(code, reason);
        myself.stop(Some(reason.to_owned()));
    }

    fn apply_update(&mut self, update: SessionUpdate) -> Result<(), String> {
        let rate_ok = |r: u32| (8_000..=48_000).contains(&r);
        if let Some(r) = update.input_sample_rate.filter(|r| !rate_ok(*r)) {
            return Err(format!("input_sample_rate {r} is outside 8000–48000"));
        }
        if let Some(r) = update.output_sample_rate.filter(|r| !rate_ok(*r)) {
            return Err(format!("output_sample_rate {r} is outside 8000–48000"));
        }
        let changes_rate = update
            .input_sample_rate
            .is_some_and(|r| r != self.settings.input_sample_rate)
            || update
                .output_sample_rate
                .is_some_and(|r| r != self.settings.output_sample_rate);
        if self.settings.fixed_sample_rates && changes_rate {
            return Err(
                "this transport fixes the sample rates (WebRTC carries Opus at 48000 Hz)".into(),
            );
        }
        if let Some(v) = &update.voice
            && (v.is_empty() || v.len() > 100)
        {
            return Err("voice must be 1 to 100 characters".into());
        }
        let mut td = self.settings.turn_detection.clone();
        if let Some(t) = update.turn_detection {
            td.silence_duration_ms = t.silence_duration_ms.unwrap_or(td.silence_duration_ms);
            td.min_speech_ms = t.min_speech_ms.unwrap_or(td.min_speech_ms);
            td.max_turn_ms = t.max_turn_ms.unwrap_or(td.max_turn_ms);
        }
        if !(100..=5_000).contains(&td.silence_duration_ms)
            || td.min_speech_ms > 2_000
            || !(1_000..=120_000).contains(&td.max_turn_ms)
        {
            return Err("turn_detection out of range (silence 100–5000, min_speech ≤ 2000, max_turn 1000–120000 ms)".into());
        }
        self.settings.turn_detection = td;
        if let Some(r) = update.input_sample_rate {
            self.settings.input_sample_rate = r;
        }
        if let Some(r) = update.output_sample_rate {
            self.settings.output_sample_rate = r;
        }
        if let Some(v) = update.voice {
            self.settings.voice = v;
        }
        let _ = self.stt.cast(SttMsg::Configure {
            sample_rate: self.settings.input_sample_rate,
            turn_detection: self.settings.turn_detection.clone(),
        });
        let _ = self.tts.cast(TtsMsg::Configure {
            output_sample_rate: self.settings.output_sample_rate,
            voice: self.settings.voice.clone(),
        });
        Ok(())
    }
}

/// The `avatar_failed` message: what the customer sees, without vendor detail.
fn avatar_failure_message(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Rejected(_) => {
            "the video avatar was refused by its provider; the built-in avatar speaks instead"
        }
        _ => "the video avatar is unavailable; the built-in avatar speaks instead",
    }
}

fn status_label(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Completed => "completed",
        ResponseStatus::Cancelled => "cancelled",
        ResponseStatus::Failed => "failed",
    }
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SessionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let shared = args.shared;
        let stt_args = SttArgs {
            report: myself.get_derived(),
            session_id: args.id.clone(),
            sample_rate: args.settings.input_sample_rate,
            turn_detection: args.settings.turn_detection.clone(),
            shared: shared.clone(),
            timeout: args.settings.stt_timeout,
            early_transcription_ms: args.settings.early_transcription_ms,
        };
        let (stt, _) = Actor::spawn_linked(None, SttStream, stt_args, myself.get_cell()).await?;
        let tts_args = TtsArgs {
            report: myself.get_derived(),
            output_sample_rate: args.settings.output_sample_rate,
            voice: args.settings.voice.clone(),
            shared: shared.clone(),
            outbox: args.outbox.clone(),
        };
        let (tts, _) = Actor::spawn_linked(None, TtsStream, tts_args, myself.get_cell()).await?;
        let avatar_args = AvatarArgs {
            session_id: args.id.clone(),
            report: myself.get_derived(),
            settings: args.settings.avatar.clone(),
            outbox: args.outbox.clone(),
            shared: shared.clone(),
        };
        let (avatar, _) =
            Actor::spawn_linked(None, AvatarController, avatar_args, myself.get_cell()).await?;
        let record = SessionRecord {
            session_id: args.id.clone(),
            tenant: args.tenant.clone(),
            user_id: args.user_id.clone(),
            transport: args.transport.clone(),
        };
        let sink = shared.sink.clone();
        tokio::spawn(async move {
            let session_id = record.session_id.clone();
            if let Err(e) = sink.session_started(record).await {
                tracing::error!(%session_id, error = %e, "recording a session start failed");
            }
        });
        let mut state = SessionState {
            _alive: AliveGuard::new(&shared.metrics.live_actors),
            id: args.id,
            tenant: args.tenant,
            user_id: args.user_id,
            settings: args.settings,
            outbox: args.outbox,
            shared,
            stt,
            tts,
            avatar,
            current: None,
            history: VecDeque::new(),
            pending_text: None,
            seq: 0,
            failures: HashMap::new(),
            ended: false,
            cancel: CancellationToken::new(),
            speech_ends: HashMap::new(),
            end_reason: None,
            draining: None,
            remote_avatar: false,
            unbilled: TurnUsage::default(),
            speech_start_ms: None,
            turn_starts: VecDeque::new(),
            turn_refusals: VecDeque::new(),
            time_limit: None,
        };
        if let Some(limit) = state.settings.max_duration {
            // Aborted when the session stops, so no timer outlives it.
            state.time_limit = Some(
                myself
                    .send_after(limit, || SessionMsg::Control(Control::TimeUp))
                    .abort_handle(),
            );
        }
        state.outbox.event(ServerEvent::SessionCreated {
            session: state.info(),
        });
        Ok(state)
    }

    async fn post_start(
        &self,
        _: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(notice) = state.settings.closing_notice.take() {
            state.say_and_close(notice);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(session_id = %state.id))]
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.ended {
            return Ok(());
        }
        match msg {
            SessionMsg::Client(input) => state.on_client(&myself, input).await,
            SessionMsg::Stt(event) => state.on_stt(&myself, event).await,
            SessionMsg::Turn(event) => state.on_turn(event),
            SessionMsg::Tts(event) => state.on_tts(event),
            SessionMsg::Avatar(event) => state.on_avatar(event),
            SessionMsg::Control(control) => state.on_control(&myself, control),
        }
        // Draining: close as soon as no answer is in progress.
        if let Some((reason, code)) = state.draining.clone()
            && state.current.is_none()
        {
            state.end(&myself, &reason, code);
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.ended {
            return Ok(());
        }
        let (cell, failed) = match &event {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::warn!(session_id = %state.id, error = %err, "child actor failed");
                (cell.clone(), true)
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell.clone(), false),
            _ => return Ok(()),
        };
        let Some(kind) = state.child_kind(&cell) else {
            return Ok(());
        };
        match kind {
            // A turn stops itself when done; only a failure matters.
            ChildKind::Turn => {
                if failed && let Some(id) = state.current.as_ref().map(|r| r.id.clone()) {
                    state
                        .shared
                        .metrics
                        .restarts
                        .with_label_values(&["turn"])
                        .inc();
                    state.fail_response(&id, "turn_failed", "the answer crashed");
                }
            }
            // Long-lived children stop only when we stop them, so any exit is a fault.
            ChildKind::Stt | ChildKind::Tts | ChildKind::Avatar => {
                match kind {
                    // The answer's audio is gone with the TTS worker: fail this answer.
                    ChildKind::Tts => {
                        if let Some(id) = state.current.as_ref().map(|r| r.id.clone()) {
                            state.fail_response(&id, "tts_failed", "speech output restarted");
                        }
                    }
                    // The utterance being captured is lost; tell the client to repeat.
                    ChildKind::Stt => {
                        state.outbox.event(ServerEvent::error(
                            "stt_failed",
                            "speech input restarted; please repeat",
                        ));
                    }
                    // Mouth shapes are lost, and the remote avatar with the actor (the
                    // new one starts another); the answer goes on.
                    ChildKind::Avatar => {
                        if state.remote_avatar {
                            state.remote_avatar = false;
                            if let Some(resp) = state.current.as_mut() {
                                resp.to_avatar = false;
                            }
                            state.outbox.event(ServerEvent::error(
                                "avatar_failed",
                                "the avatar restarted; the built-in avatar speaks until it is back",
                            ));
                        }
                    }
                    ChildKind::Turn => {}
                }
                state.restart_child(&myself, kind).await?;
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.cancel_response(ResponseStatus::Cancelled);
        state.cancel.cancel();
        state.ended = true;
        if let Some(timer) = state.time_limit.take() {
            timer.abort();
        }
        state.outbox.close(1000, "session ended");
        myself.stop_children(None);
        let sink = state.shared.sink.clone();
        let id = state.id.clone();
        let reason = state.end_reason.clone().unwrap_or_else(|| "ended".into());
        let usage = std::mem::take(&mut state.unbilled);
        tokio::spawn(async move {
            if let Err(e) = sink.session_ended(&id, &reason, usage).await {
                tracing::error!(session_id = %id, error = %e, "recording a session end failed");
            }
        });
        Ok(())
    }
}

/// One handler per message group.
impl SessionState {
    /// Audio and events from the transport.
    async fn on_client(&mut self, myself: &ActorRef<SessionMsg>, input: ClientInput) {
        let event = match input {
            ClientInput::Audio(samples) => {
                self.unbilled.audio_in_seconds +=
                    samples.len() as f64 / f64::from(self.settings.input_sample_rate.max(1));
                let _ = self.stt.cast(SttMsg::Audio(samples));
                return;
            }
            ClientInput::Event(event) => event,
        };
        match event {
            ClientEvent::SessionUpdate { session } => match self.apply_update(session) {
                Ok(()) => {
                    self.outbox.event(ServerEvent::SessionUpdated {
                        session: self.info(),
                    });
                }
                Err(message) => {
                    self.outbox
                        .event(ServerEvent::error("invalid_session_update", message));
                }
            },
            ClientEvent::ConversationItemCreate { item } => {
                let text: String = item
                    .content
                    .iter()
                    .filter(|p| p.kind == "input_text" || p.kind == "text")
                    .map(|p| p.text.trim())
                    .collect::<Vec<_>>()
                    .join(" ");
                if item.role != "user" || text.is_empty() || text.chars().count() > 4_000 {
                    self.outbox.event(ServerEvent::error(
                        "invalid_item",
                        "expected a user message with 1 to 4000 characters of input_text",
                    ));
                } else {
                    self.pending_text = Some(text);
                }
            }
            ClientEvent::ResponseCreate {} => match self.pending_text.take() {
                Some(text) => self.start_response(myself, text, None).await,
                None => {
                    self.outbox.event(ServerEvent::error(
                        "no_input",
                        "send conversation.item.create with text before response.create",
                    ));
                }
            },
            ClientEvent::ResponseCancel {} => self.cancel_response(ResponseStatus::Cancelled),
            ClientEvent::InputAudioBufferCommit {} => {
                let _ = self.stt.cast(SttMsg::Commit);
            }
        }
    }

    /// Speech input: speech started (barge-in), stopped, transcribed.
    async fn on_stt(&mut self, myself: &ActorRef<SessionMsg>, event: SttEvent) {
        match event {
            SttEvent::SpeechStarted { item_id, audio_ms } => {
                let detected = Instant::now();
                self.speech_start_ms = Some(audio_ms);
                self.outbox.event(ServerEvent::SpeechStarted {
                    item_id,
                    audio_start_ms: audio_ms,
                });
                if self.current.is_some() {
                    // Barge-in: the customer talks over the answer.
                    self.cancel_response(ResponseStatus::Cancelled);
                    self.shared
                        .metrics
                        .barge_in_stop
                        .observe(detected.elapsed().as_secs_f64());
                }
            }
            SttEvent::SpeechStopped {
                item_id,
                audio_ms,
                at,
            } => {
                self.outbox.event(ServerEvent::SpeechStopped {
                    item_id: item_id.clone(),
                    audio_end_ms: audio_ms,
                });
                if let Some(start) = self.speech_start_ms.take() {
                    self.unbilled.stt_seconds += audio_ms.saturating_sub(start) as f64 / 1000.0;
                }
                self.pending_speech_end(item_id, at);
            }
            SttEvent::TranscriptDelta { item_id, delta } => {
                self.outbox
                    .event(ServerEvent::TranscriptionDelta { item_id, delta });
            }
            SttEvent::Transcript {
                item_id,
                result,
                at,
            } => {
                let speech_end = self.take_speech_end(&item_id);
                match result {
                    Ok(text) => {
                        self.outbox.event(ServerEvent::TranscriptionCompleted {
                            item_id,
                            transcript: text.clone(),
                        });
                        if let Some(end) = speech_end {
                            self.shared
                                .metrics
                                .stt_latency
                                .observe(at.saturating_duration_since(end).as_secs_f64());
                        }
                        if !text.trim().is_empty() {
                            self.start_response(myself, text, speech_end).await;
                            if let Some(resp) = self.current.as_mut() {
                                resp.transcript_at = at;
                            }
                        }
                    }
                    Err(e) => {
                        self.outbox
                            .event(ServerEvent::error("transcription_failed", e.to_string()));
                    }
                }
            }
        }
    }

    /// The current answer: text, sentences to speak, done or failed.
    fn on_turn(&mut self, event: TurnEvent) {
        match event {
            TurnEvent::Delta { response_id, delta } => {
                if let Some(resp) = self.current.as_mut().filter(|r| r.id == response_id) {
                    if resp.first_token_at.is_none() {
                        let now = Instant::now();
                        resp.first_token_at = Some(now);
                        self.shared.metrics.answer_first_token.observe(
                            now.saturating_duration_since(resp.transcript_at)
                                .as_secs_f64(),
                        );
                    }
                    resp.answer_text.push_str(&delta);
                    self.outbox
                        .event(ServerEvent::OutputTextDelta { response_id, delta });
                }
            }
            TurnEvent::Sentence { response_id, text } => {
                if let Some(resp) = self.current.as_mut().filter(|r| r.id == response_id) {
                    resp.spoke = true;
                    resp.tts_characters += text.chars().count() as u64;
                    let _ = self.tts.cast(TtsMsg::Speak {
                        response_id,
                        text,
                        cancel: resp.cancel.clone(),
                        to_avatar: resp.to_avatar,
                    });
                }
            }
            TurnEvent::Done {
                response_id,
                citations,
                cache_hit,
                unanswered,
                prompt_tokens,
                completion_tokens,
            } => {
                if let Some(resp) = self.current.as_mut().filter(|r| r.id == response_id) {
                    resp.turn_done = true;
                    resp.tokens = (u64::from(prompt_tokens), u64::from(completion_tokens));
                    resp.citations = citations;
                    resp.cache_hit = cache_hit;
                    resp.unanswered = unanswered;
                    if let Some(turn) = resp.turn.take() {
                        turn.stop(None);
                    }
                    let _ = self.tts.cast(TtsMsg::EndOfResponse { response_id });
                }
            }
            TurnEvent::Failed { response_id, error } => {
                tracing::warn!(session_id = %self.id, %response_id, error = %error, "answer failed");
                self.fail_response(
                    &response_id,
                    "answer_failed",
                    "the answer could not be produced",
                );
            }
        }
    }

    /// Speech output: audio started, word timings, avatar audio, played out or failed.
    fn on_tts(&mut self, event: TtsEvent) {
        match event {
            TtsEvent::AudioStarted { response_id, at } => {
                // The apology's audio is no answer latency.
                if let Some(resp) = self
                    .current
                    .as_mut()
                    .filter(|r| r.id == response_id && !r.failed)
                {
                    resp.audio_started_at = Some(at);
                    if let Some(first) = resp.first_token_at {
                        self.shared
                            .metrics
                            .tts_first_audio
                            .observe(at.saturating_duration_since(first).as_secs_f64());
                    }
                    if let Some(end) = resp.speech_end_at {
                        self.shared
                            .metrics
                            .voice_to_voice
                            .observe(at.saturating_duration_since(end).as_secs_f64());
                    }
                }
            }
            TtsEvent::WordsScheduled { response_id, words } => {
                if let Some(resp) = self.current.as_mut().filter(|r| r.id == response_id) {
                    resp.words.extend(words.iter().cloned());
                    let _ = self.avatar.cast(AvatarMsg::Words { response_id, words });
                }
            }
            TtsEvent::AvatarAudio {
                response_id,
                samples,
                sample_rate,
            } => {
                if self.speaks_to_avatar(&response_id) {
                    let _ = self.avatar.cast(AvatarMsg::Audio {
                        response_id,
                        samples,
                        sample_rate,
                    });
                }
            }
            TtsEvent::AvatarAudioDone { response_id } => {
                if self.speaks_to_avatar(&response_id) {
                    let _ = self.avatar.cast(AvatarMsg::EndOfResponse { response_id });
                }
            }
            TtsEvent::Finished { response_id } => {
                if let Some(resp) = self
                    .current
                    .as_ref()
                    .filter(|r| r.id == response_id && r.turn_done)
                {
                    let status = if resp.failed {
                        ResponseStatus::Failed
                    } else {
                        ResponseStatus::Completed
                    };
                    let text = resp.answer_text.trim().to_owned();
                    self.finish_response(status, text);
                }
            }
            TtsEvent::Failed { response_id, error } => {
                tracing::warn!(session_id = %self.id, %response_id, error = %error, "speech synthesis failed");
                self.fail_response(&response_id, "tts_failed", "the answer could not be spoken");
            }
        }
    }

    /// The remote avatar is ready or lost.
    fn on_avatar(&mut self, event: AvatarEvent) {
        match event {
            AvatarEvent::Ready(stream) => {
                // Sent from this mailbox, like `response.created`: a response created
                // after this event on the wire is the avatar's to speak.
                self.remote_avatar = true;
                self.outbox.event(ServerEvent::avatar_stream(stream));
            }
            AvatarEvent::Failed { error } => {
                self.remote_avatar = false;
                if let Some(resp) = self.current.as_mut() {
                    resp.to_avatar = false;
                }
                self.outbox.event(ServerEvent::error(
                    "avatar_failed",
                    avatar_failure_message(&error),
                ));
            }
        }
    }

    /// Lifecycle, admin views and fault injection.
    fn on_control(&mut self, myself: &ActorRef<SessionMsg>, control: Control) {
        match control {
            Control::End { reason, code } => self.end(myself, &reason, code),
            Control::Drain { reason } => {
                self.outbox.event(ServerEvent::SessionClosing {
                    reason: reason.clone(),
                });
                self.draining = Some((reason, 1001));
            }
            Control::TimeUp => {
                const REASON: &str = "session_limit";
                self.outbox.event(ServerEvent::SessionClosing {
                    reason: REASON.into(),
                });
                self.draining.get_or_insert((REASON.into(), 1008));
            }
            Control::Snapshot(reply) => {
                let _ = reply.send(SessionSnapshot {
                    id: self.id.clone(),
                    tenant: self.tenant.clone(),
                    user_id: self.user_id.clone(),
                    turns: self.seq,
                    responding: self.current.is_some(),
                    context: self.history.iter().cloned().collect(),
                });
            }
            Control::InjectPanic(kind) => match kind {
                ChildKind::Stt => {
                    let _ = self.stt.cast(SttMsg::InjectPanic);
                }
                ChildKind::Tts => {
                    let _ = self.tts.cast(TtsMsg::InjectPanic);
                }
                ChildKind::Avatar => {
                    let _ = self.avatar.cast(AvatarMsg::InjectPanic);
                }
                ChildKind::Turn => {
                    if let Some(turn) = self.current.as_ref().and_then(|r| r.turn.as_ref()) {
                        let _ = turn.cast(TurnMsg::InjectPanic);
                    }
                }
            },
            Control::PanicSelf => panic!("injected fault in Session"),
        }
    }

    /// The remote avatar is up and speaks this response (it was ready when it began).
    fn speaks_to_avatar(&self, response_id: &str) -> bool {
        self.remote_avatar
            && self
                .current
                .as_ref()
                .is_some_and(|r| r.id == response_id && r.to_avatar)
    }
}

impl SessionState {
    /// Counts an answer against `turns_per_minute`; false (and an `error` event, or the
    /// end of the session for a client that keeps going) when it may not start.
    fn turn_allowed(&mut self, myself: &ActorRef<SessionMsg>) -> bool {
        let limit = self.settings.turns_per_minute as usize;
        if limit == 0 {
            return true;
        }
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        for times in [&mut self.turn_starts, &mut self.turn_refusals] {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= minute)
            {
                times.pop_front();
            }
        }
        if self.turn_starts.len() < limit {
            self.turn_starts.push_back(now);
            return true;
        }
        self.turn_refusals.push_back(now);
        self.shared.metrics.turns_refused.inc();
        if self.turn_refusals.len() > limit {
            self.end(myself, "turn rate", 1008);
            return false;
        }
        let wait = minute.saturating_sub(now.duration_since(self.turn_starts[0]));
        self.outbox.event(ServerEvent::error(
            "rate_limited",
            format!(
                "at most {limit} answers a minute; the next can start in {} s",
                wait.as_secs().max(1)
            ),
        ));
        false
    }

    /// Says `notice` as a response of its own, then closes (usage cap reached).
    fn say_and_close(&mut self, notice: String) {
        let response_id = format!("resp_{}", uuid_like());
        self.outbox.event(ServerEvent::ResponseCreated {
            response: ResponseRef {
                id: response_id.clone(),
                status: "in_progress".into(),
            },
        });
        self.outbox.event(ServerEvent::OutputTextDelta {
            response_id: response_id.clone(),
            delta: notice.clone(),
        });
        let cancel = self.cancel.child_token();
        let now = Instant::now();
        self.current = Some(Response {
            id: response_id.clone(),
            seq: self.seq,
            user_text: String::new(),
            cancel: cancel.clone(),
            turn: None,
            speech_end_at: None,
            transcript_at: now,
            first_token_at: Some(now),
            audio_started_at: None,
            answer_text: notice.clone(),
            words: Vec::new(),
            citations: Vec::new(),
            cache_hit: false,
            unanswered: false,
            turn_done: true,
            spoke: true,
            failed: false,
            to_avatar: false,
            tts_characters: notice.chars().count() as u64,
            tokens: (0, 0),
        });
        self.seq += 1;
        self.draining = Some(("usage_cap_reached".into(), 1013));
        let _ = self.tts.cast(TtsMsg::Speak {
            response_id: response_id.clone(),
            text: notice,
            cancel,
            to_avatar: false,
        });
        let _ = self.tts.cast(TtsMsg::EndOfResponse { response_id });
    }

    fn pending_speech_end(&mut self, item_id: String, at: Instant) {
        self.speech_ends.insert(item_id, at);
    }

    fn take_speech_end(&mut self, item_id: &str) -> Option<Instant> {
        self.speech_ends.remove(item_id)
    }
}

/// Typed handle to a live session (all sends are non-blocking).
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Session id.
    pub id: String,
    actor: ActorRef<SessionMsg>,
}

impl SessionHandle {
    pub(crate) fn new(id: String, actor: ActorRef<SessionMsg>) -> Self {
        Self { id, actor }
    }

    /// Feeds input audio (PCM16 at the input rate).
    pub fn send_audio(&self, samples: Vec<i16>) -> bool {
        self.actor
            .cast(SessionMsg::Client(ClientInput::Audio(samples)))
            .is_ok()
    }

    /// Feeds a client event.
    pub fn send_event(&self, event: ClientEvent) -> bool {
        self.actor
            .cast(SessionMsg::Client(ClientInput::Event(event)))
            .is_ok()
    }

    /// Ends the session with a reason and close code.
    pub fn end(&self, reason: &str, code: u16) {
        let _ = self.actor.cast(SessionMsg::Control(Control::End {
            reason: reason.to_owned(),
            code,
        }));
    }

    /// Fault injection for tests: makes a child actor panic.
    pub fn inject_panic(&self, kind: ChildKind) {
        let _ = self
            .actor
            .cast(SessionMsg::Control(Control::InjectPanic(kind)));
    }

    /// Fault injection for tests: makes the session actor itself panic.
    pub fn inject_session_panic(&self) {
        let _ = self.actor.cast(SessionMsg::Control(Control::PanicSelf));
    }

    /// Current state, or `None` if the session is gone or busy past the timeout.
    pub async fn snapshot(&self) -> Option<SessionSnapshot> {
        crate::rpc::ask(
            &self.actor,
            |reply| SessionMsg::Control(Control::Snapshot(reply)),
            Duration::from_secs(2),
        )
        .await
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        !matches!(
            self.actor.get_status(),
            ractor::ActorStatus::Stopped | ractor::ActorStatus::Stopping
        )
    }
}
