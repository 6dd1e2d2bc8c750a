//! One handler per group of `SessionMsg`: the transport's input, each child's events,
//! and control.

use std::time::Instant;

use ractor::ActorRef;

use super::{ChildKind, ClientInput, Control, SessionMsg, SessionSnapshot, SessionState};
use crate::avatar::{AvatarEvent, AvatarMsg};
use crate::events::{ClientEvent, ServerEvent};
use crate::ports::{ProviderError, ResponseStatus};
use crate::stt_stream::{SttEvent, SttMsg};
use crate::tts_stream::{TtsEvent, TtsMsg};
use crate::turn::{TurnEvent, TurnMsg};

/// One handler per message group.
impl SessionState {
    /// Audio and events from the transport.
    pub(super) async fn on_client(&mut self, myself: &ActorRef<SessionMsg>, input: ClientInput) {
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
    pub(super) async fn on_stt(&mut self, myself: &ActorRef<SessionMsg>, event: SttEvent) {
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
    pub(super) fn on_turn(&mut self, event: TurnEvent) {
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
    pub(super) fn on_tts(&mut self, event: TtsEvent) {
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
    pub(super) fn on_avatar(&mut self, event: AvatarEvent) {
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
    pub(super) fn on_control(&mut self, myself: &ActorRef<SessionMsg>, control: Control) {
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

    fn pending_speech_end(&mut self, item_id: String, at: Instant) {
        self.speech_ends.insert(item_id, at);
    }

    fn take_speech_end(&mut self, item_id: &str) -> Option<Instant> {
        self.speech_ends.remove(item_id)
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

/// The `avatar_failed` message: what the customer sees, without vendor detail.
fn avatar_failure_message(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Rejected(_) => {
            "the video avatar was refused by its provider; the built-in avatar speaks instead"
        }
        _ => "the video avatar is unavailable; the built-in avatar speaks instead",
    }
}
