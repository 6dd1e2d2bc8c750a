//! `SttStream`: voice activity detection and end-of-turn detection over the incoming
//! audio, then transcription of each utterance off the mailbox.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::audio::samples_for_ms;
use crate::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use crate::events::TurnDetection;
use crate::metrics::AliveGuard;
use crate::ports::{CancellationToken, ProviderError, SpeechToText, SttRequest, Vad};
use crate::session::{SessionMsg, Shared, uuid_like};

/// VAD frame length.
const FRAME_MS: u32 = 20;
/// Audio kept from before speech was confirmed, so the first syllable is not lost. Opus
/// (WebRTC) delays Silero's onset: at 300 ms Whisper heard "I'm does the service department
/// open…" for "What time does…"; 600 ms keeps the whole question (tests/api/voice.rs).
const PREROLL_MS: u32 = 600;

/// Arguments.
pub struct SttArgs {
    /// Parent session.
    pub session: ActorRef<SessionMsg>,
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
}

/// Messages.
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
}

/// The actor.
pub struct SttStream;

/// Its state.
pub struct SttState {
    session: ActorRef<SessionMsg>,
    shared: Arc<Shared>,
    vad: Box<dyn Vad>,
    endpointer: Endpointer,
    rate: u32,
    frame_len: usize,
    pending: Vec<i16>,
    recent: VecDeque<i16>,
    recent_cap: usize,
    utterance: Vec<i16>,
    item_id: Option<String>,
    timeout: Duration,
    cancel: CancellationToken,
    early_ms: u32,
    early: Option<Early>,
    _alive: AliveGuard,
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
    fn configure(&mut self, rate: u32, td: &TurnDetection) {
        if rate != self.rate {
            self.rate = rate;
            self.vad = self.shared.providers.vad.create(rate);
            self.pending.clear();
        }
        self.frame_len = samples_for_ms(FRAME_MS, rate).max(1);
        self.recent_cap = samples_for_ms(td.min_speech_ms + PREROLL_MS, rate);
        self.endpointer.reconfigure(endpoint_config(td));
    }

    fn on_frame(&mut self, frame: Vec<i16>) {
        let speech = self.vad.is_speech(&frame);
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
                self.utterance = self.recent.drain(..).collect();
                let item_id = format!("item_{}", uuid_like());
                self.item_id = Some(item_id.clone());
                let _ = self.session.cast(SessionMsg::SpeechStarted {
                    item_id,
                    audio_ms: at_ms,
                });
            }
            Some(EndpointEvent::Stopped { at_ms, .. }) => self.finish_utterance(at_ms),
            None => self.maybe_start_early(),
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
        // The turn ended `now - at_ms` of audio ago (the silence we waited for).
        let lag = Duration::from_millis(self.endpointer.now_ms().saturating_sub(at_ms));
        let ended_at = Instant::now().checked_sub(lag).unwrap_or_else(Instant::now);
        let _ = self.session.cast(SessionMsg::SpeechStopped {
            item_id: item_id.clone(),
            audio_ms: at_ms,
            at: ended_at,
        });
        let audio = std::mem::take(&mut self.utterance);
        let session = self.session.clone();
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
                    let _ = session.cast(SessionMsg::Transcript {
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
        };
        let stt = self.shared.providers.stt.clone();
        let cancel = self.cancel.child_token();
        let timeout = self.timeout;
        // Transcription runs off the mailbox; audio keeps flowing meanwhile.
        tokio::spawn(async move {
            let (partial_tx, mut partial_rx) = mpsc::channel::<String>(16);
            let forward = {
                let session = session.clone();
                let item_id = item_id.clone();
                tokio::spawn(async move {
                    while let Some(delta) = partial_rx.recv().await {
                        let _ = session.cast(SessionMsg::TranscriptDelta {
                            item_id: item_id.clone(),
                            delta,
                        });
                    }
                })
            };
            let result =
                transcribe_within(timeout, stt.as_ref(), request, partial_tx, cancel.clone()).await;
            let _ = forward.await;
            if !cancel.is_cancelled() {
                let _ = session.cast(SessionMsg::Transcript {
                    item_id,
                    result,
                    at: Instant::now(),
                });
            }
        });
    }
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
        _: ActorRef<Self::Msg>,
        args: SttArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let rate = args.sample_rate;
        let td = args.turn_detection;
        Ok(SttState {
            _alive: AliveGuard::new(&args.shared.metrics.live_actors),
            vad: args.shared.providers.vad.create(rate),
            endpointer: Endpointer::new(endpoint_config(&td)),
            frame_len: samples_for_ms(FRAME_MS, rate).max(1),
            recent_cap: samples_for_ms(td.min_speech_ms + PREROLL_MS, rate),
            session: args.session,
            shared: args.shared,
            rate,
            pending: Vec::new(),
            recent: VecDeque::new(),
            utterance: Vec::new(),
            item_id: None,
            timeout: args.timeout,
            cancel: CancellationToken::new(),
            early_ms: args.early_transcription_ms,
            early: None,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SttMsg::Audio(samples) => {
                state.pending.extend_from_slice(&samples);
                let frame_len = state.frame_len;
                let mut start = 0;
                while state.pending.len() - start >= frame_len {
                    let frame = state.pending[start..start + frame_len].to_vec();
                    start += frame_len;
                    state.on_frame(frame);
                }
                state.pending.drain(..start);
            }
            SttMsg::Commit => {
                if let Some(EndpointEvent::Stopped { at_ms, .. }) = state.endpointer.commit() {
                    state.finish_utterance(at_ms);
                }
            }
            SttMsg::Configure {
                sample_rate,
                turn_detection,
            } => state.configure(sample_rate, &turn_detection),
            SttMsg::InjectPanic => panic!("injected fault in SttStream"),
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
