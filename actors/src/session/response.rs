//! The response in progress: starting one (a `Turn`), cancelling it on barge-in, failing
//! it with an apology, finishing it (the `response.done` event, context, the turn record),
//! and the limits on starting one (turn rate, the closing notice).

use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};

use super::{Response, SessionMsg, SessionState};
use crate::avatar::AvatarMsg;
use crate::events::{ResponseRef, ResponseSummary, ServerEvent};
use crate::ports::{
    ContextTurn, ResponseMetrics, ResponseStatus, TurnRecord, TurnTimeline, TurnUsage,
};
use crate::tasks::uuid_like;
use crate::tts_stream::TtsMsg;
use crate::turn::{Turn, TurnArgs};

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
    pub(super) async fn start_response(
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
            persona: self.settings.prompt(),
            timezone: self.settings.timezone.clone(),
            shared: self.shared.clone(),
            cancel: cancel.clone(),
            timeout: self.settings.answer_timeout,
            top_k: self.settings.retrieval_top_k,
            instructed: !self.settings.instructions.is_empty(),
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
    pub(super) fn cancel_response(&mut self, status: ResponseStatus) {
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
    pub(super) fn fail_response(&mut self, response_id: &str, code: &str, message: &str) {
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

    pub(super) fn finish_response(&mut self, status: ResponseStatus, output_text: String) {
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
    pub(super) fn say_and_close(&mut self, notice: String) {
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
}

fn status_label(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Completed => "completed",
        ResponseStatus::Cancelled => "cancelled",
        ResponseStatus::Failed => "failed",
    }
}
