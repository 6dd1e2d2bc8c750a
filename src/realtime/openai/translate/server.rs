//! The session → client half of the translation: Adam's events and audio frames as the
//! API's server events, with their item, output and content indexes.

use adam_actors::events::{ResponseSummary, ServerEvent};
use adam_actors::ports::ResponseStatus;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::{Current, REMEMBERED_ITEMS, Translator, short};
use crate::realtime::openai::config::TurnMode;

impl Translator {
    fn user_audio_item(&self, id: &str, transcript: Option<&str>) -> Value {
        json!({
            "id": id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": transcript}],
        })
    }

    pub(super) fn user_audio_item_added(&mut self, id: &str) -> Value {
        let item = self.user_audio_item(id, None);
        let previous = self.last_item.replace(id.to_owned());
        self.event(
            "conversation.item.added",
            json!({"item": item, "previous_item_id": previous}),
        )
    }

    /// The client's id of an Adam input item.
    fn input_item(&mut self, adam_id: &str) -> String {
        if let Some(id) = self.item_ids.get(adam_id) {
            return id.clone();
        }
        let id = self
            .next_spoken_item
            .take()
            .unwrap_or_else(|| adam_id.to_owned());
        if self.item_ids.len() > REMEMBERED_ITEMS {
            self.item_ids.clear();
        }
        self.item_ids.insert(adam_id.to_owned(), id.clone());
        id
    }

    fn assistant_item(&self, current: &Current, status: &str) -> Value {
        let content = if self.config.text_only {
            json!([{"type": "output_text", "text": current.transcript}])
        } else {
            json!([{"type": "output_audio", "transcript": current.transcript}])
        };
        json!({
            "id": current.item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        })
    }

    fn part(&self, transcript: &str) -> Value {
        if self.config.text_only {
            json!({"type": "text", "text": transcript})
        } else {
            json!({"type": "audio", "transcript": transcript})
        }
    }

    fn response_object(&self, id: &str, status: &str) -> Value {
        json!({
            "id": id,
            "object": "realtime.response",
            "status": status,
            "status_details": null,
            "output": [],
            "conversation_id": format!("conv_{}", short(&self.session_id)),
            "output_modalities": [if self.config.text_only { "text" } else { "audio" }],
            "max_output_tokens": self.config.max_output_tokens,
            "audio": {"output": {"format": self.config.output.json(), "voice": self.config.voice}},
            "usage": null,
            "metadata": self.next_metadata,
        })
    }

    /// Translates one session event into the API's events (none, one or several).
    pub fn server(&mut self, event: &ServerEvent) -> Vec<Value> {
        let manual = self.config.turn == TurnMode::Manual;
        match event {
            ServerEvent::SessionCreated { .. } => {
                let session = self.config.session_json(&self.session_id);
                vec![self.event("session.created", json!({"session": session}))]
            }
            ServerEvent::SessionUpdated { .. } if self.unasked_updates > 0 => {
                self.unasked_updates -= 1;
                Vec::new()
            }
            ServerEvent::SessionUpdated { .. } => {
                if let Some(next) = self.pending_configs.pop_front() {
                    self.config = next;
                }
                let session = self.config.session_json(&self.session_id);
                vec![self.event("session.updated", json!({"session": session}))]
            }
            ServerEvent::SpeechStarted {
                item_id,
                audio_start_ms,
            } => {
                let id = self.input_item(item_id);
                self.speech_start_ms.insert(id.clone(), *audio_start_ms);
                if let Some(current) = self.current.as_mut() {
                    current.cancel_reason.get_or_insert("turn_detected");
                }
                if manual {
                    return Vec::new();
                }
                vec![self.event(
                    "input_audio_buffer.speech_started",
                    json!({"item_id": id, "audio_start_ms": audio_start_ms}),
                )]
            }
            ServerEvent::SpeechStopped {
                item_id,
                audio_end_ms,
            } => {
                let id = self.input_item(item_id);
                if let Some(start) = self.speech_start_ms.remove(&id) {
                    self.speech_secs.insert(
                        id.clone(),
                        audio_end_ms.saturating_sub(start) as f64 / 1000.0,
                    );
                }
                self.spoken_turn_pending = true;
                self.appended = false;
                if manual {
                    // Its commit was answered already.
                    return Vec::new();
                }
                let stopped = self.event(
                    "input_audio_buffer.speech_stopped",
                    json!({"item_id": id, "audio_end_ms": audio_end_ms}),
                );
                let committed = self.event(
                    "input_audio_buffer.committed",
                    json!({"item_id": id, "previous_item_id": self.last_item}),
                );
                let added = self.user_audio_item_added(&id);
                vec![stopped, committed, added]
            }
            ServerEvent::TranscriptionDelta { item_id, delta } => {
                let id = self.input_item(item_id);
                vec![self.event(
                    "conversation.item.input_audio_transcription.delta",
                    json!({"item_id": id, "content_index": 0, "delta": delta}),
                )]
            }
            ServerEvent::TranscriptionCompleted {
                item_id,
                transcript,
            } => {
                let id = self.input_item(item_id);
                let seconds = self.speech_secs.remove(&id).unwrap_or(0.0);
                if transcript.trim().is_empty() {
                    // Nothing to answer: the session starts no response.
                    self.spoken_turn_pending = false;
                }
                let completed = self.event(
                    "conversation.item.input_audio_transcription.completed",
                    json!({
                        "item_id": id,
                        "content_index": 0,
                        "transcript": transcript,
                        "usage": {"type": "duration", "seconds": seconds},
                    }),
                );
                let item = self.user_audio_item(&id, Some(transcript));
                let done = self.event(
                    "conversation.item.done",
                    json!({"item": item, "previous_item_id": null}),
                );
                vec![completed, done]
            }
            ServerEvent::ResponseCreated { response } => {
                self.spoken_turn_pending = false;
                let item_id = self.new_item_id();
                let current = Current {
                    response_id: response.id.clone(),
                    item_id: item_id.clone(),
                    transcript: String::new(),
                    audio_samples: 0,
                    cancel_reason: None,
                };
                let object = self.response_object(&response.id, "in_progress");
                self.next_metadata = Value::Null;
                let created = self.event("response.created", json!({"response": object}));
                let item = self.assistant_item(&current, "in_progress");
                let output_added = self.event(
                    "response.output_item.added",
                    json!({"response_id": response.id, "output_index": 0, "item": item}),
                );
                let previous = self.last_item.replace(item_id.clone());
                let item_added = self.event(
                    "conversation.item.added",
                    json!({"item": item, "previous_item_id": previous}),
                );
                let part = self.part("");
                let part_added = self.event(
                    "response.content_part.added",
                    json!({
                        "response_id": response.id, "item_id": item_id,
                        "output_index": 0, "content_index": 0, "part": part,
                    }),
                );
                self.current = Some(current);
                vec![created, output_added, item_added, part_added]
            }
            ServerEvent::OutputTextDelta { response_id, delta } => {
                let Some(current) = self
                    .current
                    .as_mut()
                    .filter(|c| &c.response_id == response_id)
                else {
                    return Vec::new();
                };
                current.transcript.push_str(delta);
                let item_id = current.item_id.clone();
                let kind = if self.config.text_only {
                    "response.output_text.delta"
                } else {
                    "response.output_audio_transcript.delta"
                };
                vec![self.event(
                    kind,
                    json!({
                        "response_id": response_id, "item_id": item_id,
                        "output_index": 0, "content_index": 0, "delta": delta,
                    }),
                )]
            }
            ServerEvent::ResponseDone { response } => self.response_done(response),
            ServerEvent::Error { error } => {
                if error.code == "invalid_session_update" {
                    if self.unasked_updates > 0 {
                        self.unasked_updates -= 1;
                    } else {
                        self.pending_configs.pop_front();
                    }
                }
                if error.code == "no_input" {
                    self.spoken_turn_pending = false;
                }
                let kind = if client_fault(&error.code) {
                    "invalid_request_error"
                } else {
                    "server_error"
                };
                vec![self.error(kind, &error.code, error.message.clone(), None, None)]
            }
            // The WebSocket needs none of these: the API's client truncates its own
            // playback, and the close frame says why the connection ends.
            ServerEvent::OutputAudioStarted { .. }
            | ServerEvent::OutputAudioCleared { .. }
            | ServerEvent::SessionClosed { .. }
            | ServerEvent::AvatarViseme { .. }
            | ServerEvent::AvatarStream { .. }
            | ServerEvent::SessionClosing { .. } => self.adam_extra(event).into_iter().collect(),
        }
    }

    /// Adam's own event as `adam.<type>`, for a client that asked for them.
    fn adam_extra(&mut self, event: &ServerEvent) -> Option<Value> {
        if !self.extras {
            return None;
        }
        let mut value = serde_json::to_value(event).ok()?;
        value.as_object_mut()?.remove("type");
        Some(self.event(&format!("adam.{}", event.kind()), value))
    }

    fn response_done(&mut self, summary: &ResponseSummary) -> Vec<Value> {
        let (status, reason) = match summary.status {
            ResponseStatus::Completed => ("completed", None),
            ResponseStatus::Cancelled => (
                "cancelled",
                Some(
                    self.current
                        .as_ref()
                        .and_then(|c| c.cancel_reason)
                        .unwrap_or("client_cancelled"),
                ),
            ),
            ResponseStatus::Failed => ("failed", None),
        };
        let status_details = match (status, reason) {
            ("cancelled", Some(reason)) => json!({"type": "cancelled", "reason": reason}),
            ("failed", _) => {
                json!({"type": "failed", "error": {"type": "server_error", "code": "answer_failed"}})
            }
            _ => Value::Null,
        };
        let mut events = Vec::new();
        let mut output = Vec::new();
        let current = self.current.take().filter(|c| c.response_id == summary.id);
        if let Some(mut current) = current {
            if !summary.output_text.is_empty() || status == "completed" {
                current.transcript = summary.output_text.clone();
            }
            let base = json!({
                "response_id": summary.id, "item_id": current.item_id,
                "output_index": 0, "content_index": 0,
            });
            let with = |extra: Value| {
                let mut v = base.clone();
                if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                    v.extend(extra);
                }
                v
            };
            if self.config.text_only {
                events.push(self.event(
                    "response.output_text.done",
                    with(json!({"text": current.transcript})),
                ));
            } else {
                events.push(self.event("response.output_audio.done", with(json!({}))));
                events.push(self.event(
                    "response.output_audio_transcript.done",
                    with(json!({"transcript": current.transcript})),
                ));
            }
            let part = self.part(&current.transcript);
            events.push(self.event("response.content_part.done", with(json!({"part": part}))));
            let item_status = if status == "completed" {
                "completed"
            } else {
                "incomplete"
            };
            let item = self.assistant_item(&current, item_status);
            events.push(self.event(
                "response.output_item.done",
                json!({"response_id": summary.id, "output_index": 0, "item": item}),
            ));
            events.push(self.event(
                "conversation.item.done",
                json!({"item": item, "previous_item_id": null}),
            ));
            output.push(item);
            let audio_ms =
                (current.audio_samples as u64 * 1000) / u64::from(self.config.output.rate().max(1));
            self.assistant_items
                .push_back((current.item_id.clone(), audio_ms));
            if self.assistant_items.len() > REMEMBERED_ITEMS {
                self.assistant_items.pop_front();
            }
        }
        let usage = &summary.usage;
        let mut response = self.response_object(&summary.id, status);
        response["status_details"] = status_details;
        response["output"] = Value::Array(output);
        response["usage"] = json!({
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "input_token_details": {"text_tokens": usage.prompt_tokens, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": usage.completion_tokens, "audio_tokens": 0},
        });
        // Adam's extras ride in a field the SDKs' models tolerate.
        response["adam"] = json!({
            "citations": summary.citations,
            "metrics": summary.metrics,
            "usage": summary.usage,
        });
        events.push(self.event("response.done", json!({"response": response})));
        events
    }

    /// One frame of output audio as `response.output_audio.delta` (nothing for a
    /// text-only session, or for audio outside a response).
    pub fn audio(&mut self, samples: &[i16]) -> Option<Value> {
        if self.config.text_only {
            return None;
        }
        let format = self.config.output;
        let current = self.current.as_mut()?;
        current.audio_samples += samples.len();
        let fields = json!({
            "response_id": current.response_id,
            "item_id": current.item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": BASE64.encode(format.encode(samples)),
        });
        Some(self.event("response.output_audio.delta", fields))
    }
}

/// Errors a client caused, as opposed to the server's own.
fn client_fault(code: &str) -> bool {
    code.starts_with("invalid_")
        || matches!(
            code,
            "unknown_event" | "malformed_event" | "no_input" | "rate_limited"
        )
}
