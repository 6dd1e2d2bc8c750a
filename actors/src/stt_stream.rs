//! `SttStream`: voice activity detection and end-of-turn detection over the incoming
//! audio, then transcription of each utterance off the mailbox.
//!
//! With a [`ListeningStt`] (Deepgram's endpointing) the audio also streams to the provider,
//! which decides where each turn ends and gives its text; the local VAD still starts turns
//! (barge-in stays immediate) and takes over, with the utterance it kept, when the provider
//! does not end a turn within [`PROVIDER_END_GRACE`] of the local silence or its stream
//! fails (then for the rest of the session).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};
use tokio::sync::mpsc;

use crate::audio::{Framer, samples_for_ms};
use crate::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use crate::events::TurnDetection;
use crate::metrics::AliveGuard;
use crate::ports::{
    CancellationToken, ListenEvent, ListenInput, Listening, ProviderError, SpeechToText,
    SttRequest, Vad, Vocabulary,
};
use crate::shared::Shared;
use crate::tasks::uuid_like;

/// VAD frame length.
const FRAME_MS: u32 = 20;
/// Audio kept from before speech was confirmed, so the first syllable is not lost. Opus
/// (WebRTC) delays Silero's onset: at 300 ms Whisper heard "I'm does the service department
/// open…" for "What time does…"; 600 ms keeps the whole question (tests/api/voice.rs).
const PREROLL_MS: u32 = 600;

/// How long after the local VAD's end of turn a listening provider still gets to end it
/// itself (its endpointing runs on the same silence, plus a network round trip).
pub const PROVIDER_END_GRACE: Duration = Duration::from_millis(2_500);

/// What `SttStream` reports to its parent. `item_id` names the utterance; `audio_ms` is a
/// position in the session's input audio.
#[allow(missing_docs, reason = "the fields are described on their variants")]
pub enum SttEvent {
    /// Speech began at `audio_ms`.
    SpeechStarted { item_id: String, audio_ms: u64 },
    /// Speech ended at `audio_ms`, which was `at` by the clock.
    SpeechStopped {
        item_id: String,
        audio_ms: u64,
        at: Instant,
    },
    /// Interim transcript: `delta` appends to what was sent before.
    TranscriptDelta { item_id: String, delta: String },
    /// The final transcript, or why there is none; it arrived `at`.
    Transcript {
        item_id: String,
        result: Result<String, ProviderError>,
        at: Instant,
    },
}

/// Configuration of one `SttStream`.
pub struct SttArgs {
    /// Where it reports.
    pub report: DerivedActorRef<SttEvent>,
    /// Its id (logs).
    pub session_id: String,
    /// Input rate.
    pub sample_rate: u32,
    /// Thresholds.
    pub turn_detection: TurnDetection,
    /// Providers and metrics.
    pub shared: Arc<Shared>,
    /// Deadline for one transcription.
    pub timeout: Duration,
    /// Start transcribing after this much silence, before the turn is over (0: only at the
    /// end of the turn). If the customer goes on speaking the early result is dropped; if
    /// not, the turn's transcript is ready sooner by up to the STT's own latency.
    pub early_transcription_ms: u32,
    /// The dealership's words, for the recognizer.
    pub vocabulary: Vocabulary,
}

/// Input of `SttStream`.
pub enum SttMsg {
    /// Input PCM16.
    Audio(Vec<i16>),
    /// End the current turn now.
    Commit,
    /// New rate or thresholds.
    Configure {
        /// Input rate.
        sample_rate: u32,
        /// Thresholds.
        turn_detection: TurnDetection,
    },
    /// Fault injection.
    InjectPanic,
    /// The listening provider's stream opened (or could not).
    Listening {
        /// Which opening.
        generation: u64,
        /// Where audio goes.
        result: Result<mpsc::Sender<ListenInput>, ProviderError>,
    },
    /// What the listening provider heard.
    Heard {
        /// Which stream.
        generation: u64,
        /// The event, or why the stream ended.
        event: Result<ListenEvent, ProviderError>,
    },
    /// The provider's time to end `item_id` is up.
    ProviderGrace {
        /// The turn.
        item_id: String,
    },
}

/// The speech-input actor, one per session.
pub struct SttStream;

/// VAD, endpointer, the utterance being captured and the listening provider's stream.
pub struct SttState {
    report: DerivedActorRef<SttEvent>,
    session_id: String,
    shared: Arc<Shared>,
    vad: Box<dyn Vad>,
    endpointer: Endpointer,
    rate: u32,
    framer: Framer,
    recent: VecDeque<i16>,
    recent_cap: usize,
    utterance: Vec<i16>,
    item_id: Option<String>,
    timeout: Duration,
    cancel: CancellationToken,
    early_ms: u32,
    early: Option<Early>,
    vocabulary: Vocabulary,
    listen: Listen,
    _alive: AliveGuard,
}

/// The listening provider's side of the state.
#[derive(Default)]
struct Listen {
    /// Audio to the provider while its stream works.
    audio: Option<mpsc::Sender<ListenInput>>,
    /// Bumped by every opening: events of an older stream are ignored.
    generation: u64,
    /// The current turn started while the provider listened: it ends the turn.
    owns_turn: bool,
    /// When the local VAD ended the current turn (the provider's end is awaited).
    local_stop: Option<(u64, Instant)>,
    /// Interim text already sent as deltas for the current turn.
    shown: String,
}

/// A transcription started during the end-of-turn silence.
struct Early {
    result: tokio::task::JoinHandle<Result<String, ProviderError>>,
    cancel: CancellationToken,
}

impl Early {
    fn abandon(self) {
        self.cancel.cancel();
        self.result.abort();
    }
}

fn endpoint_config(td: &TurnDetection) -> EndpointConfig {
    EndpointConfig {
        silence_ms: td.silence_duration_ms,
        min_speech_ms: td.min_speech_ms.max(FRAME_MS),
        max_turn_ms: td.max_turn_ms,
    }
}

impl SttState {
    fn configure(&mut self, myself: &ActorRef<SttMsg>, rate: u32, td: &TurnDetection) {
        if rate != self.rate {
            self.rate = rate;
            self.vad = self.shared.providers.vad.create(rate);
            self.framer.clear();
            if self.listen.audio.take().is_some() {
                self.open_listening(myself);
            }
        }
        self.framer.set_frame_len(samples_for_ms(FRAME_MS, rate));
        self.recent_cap = samples_for_ms(td.min_speech_ms + PREROLL_MS, rate);
        self.endpointer.reconfigure(endpoint_config(td));
    }

    /// When audio position `at_ms` was heard, by the clock (it is `now - at_ms` of audio ago).
    fn instant_of(&self, at_ms: u64) -> Instant {
        let lag = Duration::from_millis(self.endpointer.now_ms().saturating_sub(at_ms));
        Instant::now().checked_sub(lag).unwrap_or_else(Instant::now)
    }

    /// Opens a stream to the listening provider, if there is one; events come back as
    /// messages.
    fn open_listening(&mut self, myself: &ActorRef<SttMsg>) {
        let Some(provider) = self.shared.providers.listening.clone() else {
            return;
        };
        self.listen.generation += 1;
        let generation = self.listen.generation;
        let (rate, cancel, myself) = (self.rate, self.cancel.child_token(), myself.clone());
        let vocabulary = self.vocabulary.clone();
        tokio::spawn(async move {
            let Listening { audio, mut events } =
                match provider.listen(rate, vocabulary, cancel).await {
                    Ok(listening) => listening,
                    Err(error) => {
                        let result = Err(error);
                        let _ = myself.cast(SttMsg::Listening { generation, result });
                        return;
                    }
                };
            let opened = SttMsg::Listening {
                generation,
                result: Ok(audio),
            };
            if myself.cast(opened).is_err() {
                return;
            }
            while let Some(event) = events.recv().await {
                if myself.cast(SttMsg::Heard { generation, event }).is_err() {
                    return; // the actor stopped
                }
            }
            let event = Err(ProviderError::Unavailable("the stream ended".into()));
            let _ = myself.cast(SttMsg::Heard { generation, event });
        });
    }

    /// The listening provider is gone: the local VAD ends turns from now on, this one too.
    fn listening_failed(&mut self, why: &str) {
        if self.listen.audio.take().is_none() {
            return;
        }
        tracing::warn!(
            session_id = %self.session_id,
            error = why,
            "listening speech-to-text failed; turns end on the local VAD"
        );
        self.listen.generation += 1;
        self.listen.owns_turn = false;
        if let Some((at_ms, _)) = self.listen.local_stop.take() {
            self.finish_utterance(at_ms);
        }
    }

    fn on_heard(&mut self, event: ListenEvent) {
        match event {
            // The local VAD starts turns: it is faster, and the provider's own voice
            // activity events also fire on noise.
            ListenEvent::SpeechStarted => {}
            ListenEvent::Interim(text) => {
                if text.is_empty() {
                    return;
                }
                let Some(item_id) = self.provider_item() else {
                    return;
                };
                if let Some(delta) = next_delta(&mut self.listen.shown, text) {
                    let _ = self
                        .report
                        .send_message(SttEvent::TranscriptDelta { item_id, delta });
                }
            }
            ListenEvent::EndOfTurn(text) => {
                // An empty end while the customer still speaks (locally) is not an end.
                if text.is_empty() && self.listen.local_stop.is_none() {
                    return;
                }
                if self.item_id.is_none() && !text.is_empty() {
                    self.start_item(0);
                    self.listen.owns_turn = true;
                }
                if self.listen.owns_turn {
                    self.finish_from_provider(text);
                }
            }
        }
    }

    /// The current turn, when the provider ends it.
    fn provider_item(&mut self) -> Option<String> {
        if self.item_id.is_none() {
            self.start_item(0);
            self.listen.owns_turn = true;
        }
        self.listen
            .owns_turn
            .then(|| self.item_id.clone())
            .flatten()
    }

    fn start_item(&mut self, at_ms: u64) {
        let item_id = format!("item_{}", uuid_like());
        self.item_id = Some(item_id.clone());
        self.listen.shown.clear();
        let _ = self.report.send_message(SttEvent::SpeechStarted {
            item_id,
            audio_ms: at_ms,
        });
    }

    /// The provider ended the turn with `text`.
    fn finish_from_provider(&mut self, text: String) {
        let Some(item_id) = self.item_id.take() else {
            return;
        };
        let (audio_ms, at) = self
            .listen
            .local_stop
            .take()
            .unwrap_or((self.endpointer.now_ms(), Instant::now()));
        // The provider's word is final: a local turn still open ends with it.
        let _ = self.endpointer.commit();
        self.listen.owns_turn = false;
        self.utterance.clear();
        let _ = self.report.send_message(SttEvent::SpeechStopped {
            item_id: item_id.clone(),
            audio_ms,
            at,
        });
        let _ = self.report.send_message(SttEvent::Transcript {
            item_id,
            result: Ok(text),
            at: Instant::now(),
        });
    }

    /// The local VAD ended a turn the provider owns: wait for the provider's end.
    fn await_provider(&mut self, myself: &ActorRef<SttMsg>, at_ms: u64, finalize: bool) {
        let Some(item_id) = self.item_id.clone() else {
            return;
        };
        self.listen.local_stop = Some((at_ms, self.instant_of(at_ms)));
        if finalize
            && let Some(audio) = &self.listen.audio
            && audio.try_send(ListenInput::Finalize).is_err()
        {
            return self.listening_failed("the stream took no more input");
        }
        myself.send_after(PROVIDER_END_GRACE, move || SttMsg::ProviderGrace {
            item_id,
        });
    }

    fn on_frame(&mut self, myself: &ActorRef<SttMsg>, frame: Vec<i16>, speech: bool) {
        if let Some(audio) = &self.listen.audio
            && audio.try_send(ListenInput::Audio(frame.clone())).is_err()
        {
            self.listening_failed("audio queue full or stream closed");
        }
        if speech && let Some(early) = self.early.take() {
            // The customer goes on: that transcript would miss the rest.
            early.abandon();
        }
        if self.endpointer.in_turn() {
            self.utterance.extend_from_slice(&frame);
        } else {
            self.recent.extend(frame.iter().copied());
            while self.recent.len() > self.recent_cap {
                self.recent.pop_front();
            }
        }
        match self.endpointer.push(speech, FRAME_MS) {
            Some(EndpointEvent::Started { at_ms }) => {
                if self.listen.owns_turn && self.item_id.is_some() {
                    // Speaking again before the provider ended the turn: the same turn.
                    self.listen.local_stop = None;
                    self.utterance.extend(self.recent.drain(..));
                    return;
                }
                self.utterance = self.recent.drain(..).collect();
                self.start_item(at_ms);
                self.listen.owns_turn = self.listen.audio.is_some();
            }
            Some(EndpointEvent::Stopped { at_ms, forced }) => {
                if self.listen.owns_turn {
                    self.await_provider(myself, at_ms, forced);
                } else {
                    self.finish_utterance(at_ms);
                }
            }
            None if !self.listen.owns_turn => self.maybe_start_early(),
            None => {}
        }
    }

    /// Starts transcribing the utterance so far once the silence reaches `early_ms`.
    fn maybe_start_early(&mut self) {
        if self.early_ms == 0
            || self.early.is_some()
            || self.endpointer.silence_run_ms() < u64::from(self.early_ms)
        {
            return;
        }
        let request = SttRequest {
            audio: self.utterance.clone().into(),
            sample_rate: self.rate,
            vocabulary: self.vocabulary.clone(),
        };
        let stt = self.shared.providers.stt.clone();
        let cancel = self.cancel.child_token();
        let job_cancel = cancel.clone();
        let timeout = self.timeout;
        let result = tokio::spawn(async move {
            let (partial_tx, _partials) = mpsc::channel::<String>(16);
            transcribe_within(timeout, stt.as_ref(), request, partial_tx, job_cancel).await
        });
        self.early = Some(Early { result, cancel });
    }

    fn finish_utterance(&mut self, at_ms: u64) {
        let Some(item_id) = self.item_id.take() else {
            return;
        };
        self.listen.owns_turn = false;
        self.listen.local_stop = None;
        // The turn ended `now - at_ms` of audio ago (the silence we waited for).
        let ended_at = self.instant_of(at_ms);
        let _ = self.report.send_message(SttEvent::SpeechStopped {
            item_id: item_id.clone(),
            audio_ms: at_ms,
            at: ended_at,
        });
        let audio = std::mem::take(&mut self.utterance);
        let report = self.report.clone();
        // Started during the silence and not overtaken by more speech: its text is this
        // turn's (only silence came after it).
        if let Some(early) = self.early.take() {
            let item_id = item_id.clone();
            tokio::spawn(async move {
                let result = match early.result.await {
                    Ok(r) => r,
                    Err(e) => Err(ProviderError::Unavailable(format!(
                        "transcription task: {e}"
                    ))),
                };
                if !early.cancel.is_cancelled() {
                    let _ = report.send_message(SttEvent::Transcript {
                        item_id,
                        result,
                        at: Instant::now(),
                    });
                }
            });
            return;
        }
        let request = SttRequest {
            audio: audio.into(),
            sample_rate: self.rate,
            vocabulary: self.vocabulary.clone(),
        };
        let stt = self.shared.providers.stt.clone();
        let cancel = self.cancel.child_token();
        let timeout = self.timeout;
        // Transcription runs off the mailbox; audio keeps flowing meanwhile.
        tokio::spawn(async move {
            let (partial_tx, mut partial_rx) = mpsc::channel::<String>(16);
            let forward = {
                let report = report.clone();
                let item_id = item_id.clone();
                tokio::spawn(async move {
                    let mut shown = String::new();
                    while let Some(text) = partial_rx.recv().await {
                        if let Some(delta) = next_delta(&mut shown, text) {
                            let _ = report.send_message(SttEvent::TranscriptDelta {
                                item_id: item_id.clone(),
                                delta,
                            });
                        }
                    }
                })
            };
            let result =
                transcribe_within(timeout, stt.as_ref(), request, partial_tx, cancel.clone()).await;
            let _ = forward.await;
            if !cancel.is_cancelled() {
                let _ = report.send_message(SttEvent::Transcript {
                    item_id,
                    result,
                    at: Instant::now(),
                });
            }
        });
    }
}

/// The delta that turns `shown` into `text` (the utterance's text so far), when `text`
/// extends it; `shown` follows. Deltas append (docs/protocol.md): a revised beginning
/// shows only with the final transcript.
fn next_delta(shown: &mut String, text: String) -> Option<String> {
    let delta = text
        .strip_prefix(shown.as_str())
        .filter(|d| !d.is_empty())?
        .to_owned();
    *shown = text;
    Some(delta)
}

/// One transcription with its deadline.
async fn transcribe_within(
    timeout: Duration,
    stt: &dyn SpeechToText,
    request: SttRequest,
    partial: mpsc::Sender<String>,
    cancel: CancellationToken,
) -> Result<String, ProviderError> {
    tokio::time::timeout(timeout, stt.transcribe(request, partial, cancel))
        .await
        .unwrap_or(Err(ProviderError::Timeout))
}

impl Actor for SttStream {
    type Msg = SttMsg;
    type State = SttState;
    type Arguments = SttArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SttArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let rate = args.sample_rate;
        let td = args.turn_detection;
        let mut state = SttState {
            _alive: AliveGuard::new(&args.shared.metrics.live_actors),
            vad: args.shared.providers.vad.create(rate),
            endpointer: Endpointer::new(endpoint_config(&td)),
            framer: Framer::new(samples_for_ms(FRAME_MS, rate)),
            recent_cap: samples_for_ms(td.min_speech_ms + PREROLL_MS, rate),
            report: args.report,
            session_id: args.session_id,
            shared: args.shared,
            rate,
            recent: VecDeque::new(),
            utterance: Vec::new(),
            item_id: None,
            timeout: args.timeout,
            cancel: CancellationToken::new(),
            early_ms: args.early_transcription_ms,
            vocabulary: args.vocabulary,
            early: None,
            listen: Listen::default(),
        };
        state.open_listening(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SttMsg::Audio(samples) => {
                for frame in state.framer.push(&samples) {
                    // A shared (batched) detector answers within a few ms; the mailbox
                    // waits for it so frames stay in order.
                    let speech = state.vad.is_speech(&frame).await;
                    state.on_frame(&myself, frame, speech);
                }
            }
            SttMsg::Commit => {
                if let Some(EndpointEvent::Stopped { at_ms, .. }) = state.endpointer.commit() {
                    if state.listen.owns_turn {
                        state.await_provider(&myself, at_ms, true);
                    } else {
                        state.finish_utterance(at_ms);
                    }
                }
            }
            SttMsg::Configure {
                sample_rate,
                turn_detection,
            } => state.configure(&myself, sample_rate, &turn_detection),
            SttMsg::InjectPanic => panic!("injected fault in SttStream"),
            SttMsg::Listening { generation, result } => {
                if generation != state.listen.generation {
                    return Ok(()); // an older stream's; dropping its sender closes it
                }
                match result {
                    Ok(audio) => state.listen.audio = Some(audio),
                    Err(error) => tracing::warn!(
                        session_id = %state.session_id,
                        %error,
                        "listening speech-to-text unavailable; turns end on the local VAD"
                    ),
                }
            }
            SttMsg::Heard { generation, event } => {
                if generation != state.listen.generation {
                    return Ok(());
                }
                match event {
                    Ok(event) => state.on_heard(event),
                    Err(error) => state.listening_failed(&error.to_string()),
                }
            }
            SttMsg::ProviderGrace { item_id } => {
                if state.listen.owns_turn
                    && state.item_id.as_deref() == Some(item_id.as_str())
                    && let Some((at_ms, _)) = state.listen.local_stop
                {
                    tracing::warn!(
                        session_id = %state.session_id,
                        "the speech-to-text provider did not end the turn; transcribing it here"
                    );
                    state.finish_utterance(at_ms);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.cancel.cancel();
        if let Some(early) = state.early.take() {
            early.abandon();
        }
        Ok(())
    }
}
