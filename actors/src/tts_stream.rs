//! `TtsStream`: speaks a response sentence by sentence. A worker task per response
//! synthesizes, resamples to the client's rate, cuts 20 ms frames and paces them out in
//! real time (a small lead keeps the client's buffer fed). A response the remote avatar
//! speaks also has its audio handed on as it is synthesized, ahead of the pacing.
//! Cancellation drops the worker and everything queued in it at once. Each sentence is
//! rewritten for the ear first ([`crate::speech_text`]): every provider gets the same
//! spoken form.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};
use tokio::sync::mpsc;

use crate::audio::{Resampler, samples_for_ms};
use crate::events::ServerEvent;
use crate::metrics::AliveGuard;
use crate::outbox::Outbox;
use crate::ports::{
    CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest, VisemeTiming, WordTiming,
};
use crate::shared::Shared;
use crate::tasks::AbortOnDrop;

/// Audio sent ahead of real time.
const LEAD: Duration = Duration::from_millis(120);
/// Frame length.
const FRAME_MS: u32 = 20;

/// What `TtsStream` reports to its parent, each about the response `response_id`.
#[allow(missing_docs, reason = "the fields are described on their variants")]
pub enum TtsEvent {
    /// The response's first audio frame was queued `at`.
    AudioStarted { response_id: String, at: Instant },
    /// Words scheduled at these offsets of the response's audio.
    WordsScheduled {
        response_id: String,
        words: Vec<WordTiming>,
    },
    /// A piece of the response's audio as synthesized, PCM16 mono at `sample_rate`
    /// (responses the remote avatar speaks only).
    AvatarAudio {
        response_id: String,
        samples: Vec<i16>,
        sample_rate: u32,
    },
    /// All of the response's audio was synthesized (remote avatar only).
    AvatarAudioDone { response_id: String },
    /// All of the response's audio has played out.
    Finished { response_id: String },
    /// Synthesis failed.
    Failed {
        response_id: String,
        error: ProviderError,
    },
}

/// Configuration of one `TtsStream`.
pub struct TtsArgs {
    /// Where it reports.
    pub report: DerivedActorRef<TtsEvent>,
    /// Client's output rate.
    pub output_sample_rate: u32,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: String,
    /// Providers and metrics.
    pub shared: Arc<Shared>,
    /// Towards the client.
    pub outbox: Outbox,
}

/// Input of `TtsStream`.
pub enum TtsMsg {
    /// Speak a sentence of a response.
    Speak {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
        /// Sentence.
        text: String,
        /// The response's cancellation token.
        cancel: CancellationToken,
        /// Hand the response's audio to the remote avatar too.
        to_avatar: bool,
    },
    /// No more sentences for this response.
    EndOfResponse {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
    },
    /// Drop this response's audio now.
    Cancel {
        /// Id of the response (one answer) it belongs to.
        response_id: String,
    },
    /// New output rate or voice.
    Configure {
        /// Rate.
        output_sample_rate: u32,
        /// Voice the speech provider speaks with (its own voice name).
        voice: String,
    },
    /// Fault injection.
    InjectPanic,
}

enum Work {
    Sentence(String),
    End,
}

struct Worker {
    response_id: String,
    tx: mpsc::UnboundedSender<Work>,
    _task: AbortOnDrop,
}

/// The speech-output actor, one per session.
pub struct TtsStream;

/// The output format, and the worker of the response being spoken.
pub struct TtsState {
    report: DerivedActorRef<TtsEvent>,
    shared: Arc<Shared>,
    outbox: Outbox,
    rate: u32,
    voice: String,
    worker: Option<Worker>,
    _alive: AliveGuard,
}

struct Playout {
    response_id: String,
    report: DerivedActorRef<TtsEvent>,
    outbox: Outbox,
    cancel: CancellationToken,
    to_avatar: bool,
    rate: u32,
    frame_len: usize,
    pending: Vec<i16>,
    sent_samples: u64,
    started: Option<Instant>,
}

impl Playout {
    fn position_ms(&self) -> u32 {
        ((self.sent_samples + self.pending.len() as u64) * 1000 / u64::from(self.rate)) as u32
    }

    /// Sends whole frames at real-time pace; false once cancelled.
    async fn drain(&mut self, flush: bool) -> bool {
        if flush && !self.pending.is_empty() {
            let pad = self.frame_len - self.pending.len() % self.frame_len;
            if pad != self.frame_len {
                self.pending.extend(std::iter::repeat_n(0, pad));
            }
        }
        while self.pending.len() >= self.frame_len {
            let frame: Vec<i16> = self.pending.drain(..self.frame_len).collect();
            let started = *self.started.get_or_insert_with(|| {
                let now = Instant::now();
                if !self.cancel.is_cancelled() {
                    self.outbox.event(ServerEvent::OutputAudioStarted {
                        response_id: self.response_id.clone(),
                        sample_rate: self.rate,
                    });
                    let _ = self.report.send_message(TtsEvent::AudioStarted {
                        response_id: self.response_id.clone(),
                        at: now,
                    });
                }
                now
            });
            let due = started
                + Duration::from_micros(self.sent_samples * 1_000_000 / u64::from(self.rate));
            let send_at = due.checked_sub(LEAD).unwrap_or(due);
            tokio::select! {
                _ = tokio::time::sleep_until(send_at.into()) => {}
                _ = self.cancel.cancelled() => return false,
            }
            // Checked right before queueing: after a barge-in at most this one frame
            // can still be in flight.
            if self.cancel.is_cancelled() {
                return false;
            }
            self.outbox.audio(frame);
            self.sent_samples += self.frame_len as u64;
        }
        true
    }

    /// Waits until the last frame has played at the client.
    async fn played_out(&self) -> bool {
        let Some(started) = self.started else {
            return true;
        };
        let end =
            started + Duration::from_micros(self.sent_samples * 1_000_000 / u64::from(self.rate));
        tokio::select! {
            _ = tokio::time::sleep_until(end.into()) => true,
            _ = self.cancel.cancelled() => false,
        }
    }
}

/// Chunks of one sentence the synthesizer may run ahead of the real-time playout. Enough
/// for a whole sentence (espeak-ng sends 100 ms chunks; a sentence is a few seconds), so a
/// synthesizer faster than real time finishes and frees its worker — a pooled espeak-ng
/// process, a provider connection — while the audio is still playing, instead of holding
/// it for the playback and making other conversations wait. Bounded, so a runaway
/// provider still waits for the playout.
const SENTENCE_CHUNKS: usize = 512;

async fn run_worker(
    mut playout: Playout,
    mut work: mpsc::UnboundedReceiver<Work>,
    shared: Arc<Shared>,
    voice: String,
) {
    let tts = shared.providers.tts.clone();
    let mut resampler: Option<(u32, Resampler)> = None;
    while let Some(item) = work.recv().await {
        match item {
            Work::Sentence(text) => {
                // The voice says "twenty-seven thousand nine hundred dollars" for
                // "$27,900"; the written answer keeps the original, and the word timings
                // (and visemes) come from the words actually said.
                let text = crate::speech_text::for_speech(&text);
                if text.is_empty() {
                    continue;
                }
                let offset = playout.position_ms();
                let (tx, mut rx) = mpsc::channel::<TtsChunk>(SENTENCE_CHUNKS);
                let provider = tts.clone();
                let request = TtsRequest {
                    text,
                    voice: voice.clone(),
                };
                let cancel = playout.cancel.clone();
                let synth = if playout.to_avatar {
                    let tee = AvatarTee {
                        report: playout.report.clone(),
                        response_id: playout.response_id.clone(),
                        cancel: cancel.clone(),
                    };
                    tokio::spawn(async move { tee.synthesize(&*provider, request, tx).await })
                } else {
                    tokio::spawn(async move { provider.synthesize(request, tx, cancel).await })
                };
                while let Some(chunk) = rx.recv().await {
                    if !chunk.words.is_empty() {
                        let words: Vec<WordTiming> = chunk
                            .words
                            .iter()
                            .map(|w| WordTiming {
                                word: w.word.clone(),
                                start_ms: offset + w.start_ms,
                                end_ms: offset + w.end_ms,
                                visemes: w
                                    .visemes
                                    .iter()
                                    .map(|v| VisemeTiming {
                                        viseme: v.viseme.clone(),
                                        start_ms: offset + v.start_ms,
                                        end_ms: offset + v.end_ms,
                                    })
                                    .collect(),
                            })
                            .collect();
                        let _ = playout.report.send_message(TtsEvent::WordsScheduled {
                            response_id: playout.response_id.clone(),
                            words,
                        });
                    }
                    let samples = match &mut resampler {
                        Some((rate, r)) if *rate == chunk.sample_rate => r.process(&chunk.samples),
                        _ => {
                            let mut r = Resampler::new(chunk.sample_rate, playout.rate);
                            let out = r.process(&chunk.samples);
                            resampler = Some((chunk.sample_rate, r));
                            out
                        }
                    };
                    playout.pending.extend_from_slice(&samples);
                    if !playout.drain(false).await {
                        synth.abort();
                        return;
                    }
                }
                let result = synth.await.unwrap_or_else(|e| {
                    Err(ProviderError::Unavailable(format!("tts task died: {e}")))
                });
                if let Err(error) = result {
                    if !playout.cancel.is_cancelled() {
                        let _ = playout.report.send_message(TtsEvent::Failed {
                            response_id: playout.response_id.clone(),
                            error,
                        });
                    }
                    return;
                }
            }
            Work::End => {
                if playout.to_avatar && !playout.cancel.is_cancelled() {
                    let _ = playout.report.send_message(TtsEvent::AvatarAudioDone {
                        response_id: playout.response_id.clone(),
                    });
                }
                if playout.drain(true).await && playout.played_out().await {
                    let _ = playout.report.send_message(TtsEvent::Finished {
                        response_id: playout.response_id.clone(),
                    });
                }
                return;
            }
        }
    }
}

/// Hands a sentence's audio to the remote avatar as the synthesizer produces it, before
/// the real-time pacing, so the avatar's buffer runs ahead of its playback.
struct AvatarTee {
    report: DerivedActorRef<TtsEvent>,
    response_id: String,
    cancel: CancellationToken,
}

impl AvatarTee {
    /// Synthesizes `request` into `out`, copying each chunk's audio to the parent.
    async fn synthesize(
        self,
        provider: &dyn TextToSpeech,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
    ) -> Result<(), ProviderError> {
        let (tx, mut rx) = mpsc::channel::<TtsChunk>(8);
        let synth = provider.synthesize(request, tx, self.cancel.clone());
        let Self {
            report,
            response_id,
            cancel,
        } = self;
        // Owns `rx`: when the worker is gone the tee stops and drops it, so the
        // synthesizer sees its channel closed.
        let forward = async move {
            while let Some(chunk) = rx.recv().await {
                if !chunk.samples.is_empty() && !cancel.is_cancelled() {
                    let _ = report.send_message(TtsEvent::AvatarAudio {
                        response_id: response_id.clone(),
                        samples: chunk.samples.clone(),
                        sample_rate: chunk.sample_rate,
                    });
                }
                if out.send(chunk).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(synth, forward);
        result
    }
}

impl TtsState {
    fn worker_for(
        &mut self,
        response_id: &str,
        cancel: CancellationToken,
        to_avatar: bool,
    ) -> &Worker {
        if self
            .worker
            .as_ref()
            .is_none_or(|w| w.response_id != response_id)
        {
            let (tx, rx) = mpsc::unbounded_channel();
            let playout = Playout {
                response_id: response_id.to_owned(),
                report: self.report.clone(),
                outbox: self.outbox.clone(),
                cancel,
                to_avatar,
                rate: self.rate,
                frame_len: samples_for_ms(FRAME_MS, self.rate).max(1),
                pending: Vec::new(),
                sent_samples: 0,
                started: None,
            };
            let task = tokio::spawn(run_worker(
                playout,
                rx,
                self.shared.clone(),
                self.voice.clone(),
            ));
            self.worker = Some(Worker {
                response_id: response_id.to_owned(),
                tx,
                _task: AbortOnDrop(task),
            });
        }
        // Just ensured above.
        self.worker.as_ref().expect("worker exists")
    }
}

impl Actor for TtsStream {
    type Msg = TtsMsg;
    type State = TtsState;
    type Arguments = TtsArgs;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        args: TtsArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(TtsState {
            _alive: AliveGuard::new(&args.shared.metrics.live_actors),
            report: args.report,
            shared: args.shared,
            outbox: args.outbox,
            rate: args.output_sample_rate,
            voice: args.voice,
            worker: None,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TtsMsg::Speak {
                response_id,
                text,
                cancel,
                to_avatar,
            } => {
                if !cancel.is_cancelled() && !text.trim().is_empty() {
                    let _ = state
                        .worker_for(&response_id, cancel, to_avatar)
                        .tx
                        .send(Work::Sentence(text));
                }
            }
            TtsMsg::EndOfResponse { response_id } => match &state.worker {
                Some(w) if w.response_id == response_id => {
                    let _ = w.tx.send(Work::End);
                }
                // Nothing was spoken (empty answer): finished at once.
                _ => {
                    let _ = state
                        .report
                        .send_message(TtsEvent::Finished { response_id });
                }
            },
            TtsMsg::Cancel { response_id } => {
                if state
                    .worker
                    .as_ref()
                    .is_some_and(|w| w.response_id == response_id)
                {
                    state.worker = None;
                }
            }
            TtsMsg::Configure {
                output_sample_rate,
                voice,
            } => {
                state.rate = output_sample_rate;
                state.voice = voice;
            }
            TtsMsg::InjectPanic => panic!("injected fault in TtsStream"),
        }
        Ok(())
    }
}
