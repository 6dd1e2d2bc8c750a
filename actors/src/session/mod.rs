//! `Session`: supervisor of one conversation. Routes audio to `SttStream`, starts a
//! `Turn` per user turn, feeds sentences to `TtsStream` and timings (and, with a remote
//! avatar, the answer audio) to `AvatarController`, handles barge-in, and keeps the
//! session context cache (recent turns, persona, settings). Child failures are restarted
//! within a budget; a failed turn ends with an error event and an apology; transcripts go
//! to the sink.
//!
//! Here: the messages, the state and the actor's lifecycle and supervision. The group
//! handlers are in `handlers`, the response in progress in `response`, `session.update`
//! in `settings`, and the handle transports hold in `handle`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::avatar::{AvatarArgs, AvatarController, AvatarEvent, AvatarMsg};
use crate::events::{ClientEvent, ServerEvent, SessionInfo};
use crate::metrics::AliveGuard;
use crate::outbox::Outbox;
use crate::ports::{
    CancellationToken, ContextTurn, Passage, ResponseStatus, SessionRecord, TurnUsage, WordTiming,
};
use crate::shared::Shared;
use crate::stt_stream::{SttArgs, SttEvent, SttMsg, SttStream};
use crate::tts_stream::{TtsArgs, TtsEvent, TtsMsg, TtsStream};
use crate::turn::{TurnEvent, TurnMsg};

mod handle;
mod handlers;
mod response;
mod settings;

pub use handle::SessionHandle;
pub use settings::SessionSettings;

/// One session: who it is for, its settings, where its events go.
pub struct SessionArgs {
    /// Session id.
    pub id: String,
    /// Id of the dealership (tenant) it belongs to.
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
    /// Id of the dealership (tenant) it belongs to.
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
    /// End the session now with this reason and transport close code (client left,
    /// admin, drain deadline).
    #[allow(missing_docs, reason = "described on the variant")]
    End { reason: String, code: u16 },
    /// Server shutdown: finish the answer in progress, start no new one, then close (1001).
    #[allow(missing_docs, reason = "described on the variant")]
    Drain { reason: String },
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

/// The response in progress, and what its record and metrics are made of.
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

/// A session's state: its children, the response in progress, the context, the limits.
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
            vocabulary: self.settings.vocabulary.clone(),
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
            vocabulary: args.settings.vocabulary.clone(),
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
