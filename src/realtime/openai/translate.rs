//! The translation between OpenAI Realtime events and Adam's session events, sans-IO:
//! [`Translator::client`] turns one client message into input for the session and
//! immediate replies; [`Translator::server`] and [`Translator::audio`] turn what the
//! session sends into the API's server events, with the item, output and content
//! indexes the API carries. One translator per connection.

use std::collections::{HashMap, VecDeque};

use adam_actors::events::{ClientEvent, ClientItem, ContentPart};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::config::{Config, TurnMode};

mod server;

/// Longest typed message the session accepts, characters.
const MAX_TEXT_CHARS: usize = 4_000;
/// Longest buffer held for a manual commit (`turn_detection: null`), seconds of audio.
const MAX_MANUAL_BUFFER_SECS: usize = 120;
/// Assistant items remembered for `conversation.item.truncate`.
const REMEMBERED_ITEMS: usize = 64;

/// Input for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum ToSession {
    /// PCM16 at the session's input rate.
    Audio(Vec<i16>),
    /// An Adam client event.
    Event(ClientEvent),
}

/// What one client message produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// For the session, in order.
    pub to_session: Vec<ToSession>,
    /// Server events to send the client now, in order.
    pub replies: Vec<Value>,
}

/// The assistant item of the response in progress.
#[derive(Debug)]
struct Current {
    response_id: String,
    item_id: String,
    transcript: String,
    audio_samples: usize,
    /// Why it is being cancelled, if it is (`turn_detected`, `client_cancelled`).
    cancel_reason: Option<&'static str>,
}

/// One connection's translation state.
#[derive(Debug)]
pub struct Translator {
    session_id: String,
    config: Config,
    /// Configurations sent to the session, waiting for its `session.updated` (or error).
    pending_configs: VecDeque<Config>,
    /// Send Adam's own events (visemes, avatar, closing) as `adam.*` events.
    extras: bool,
    events: u64,
    /// The conversation's last item (`previous_item_id`).
    last_item: Option<String>,
    /// Adam item ids to the ids the client knows (a manual commit names its item first).
    item_ids: HashMap<String, String>,
    /// The id the next spoken item gets (manual commit).
    next_spoken_item: Option<String>,
    /// Audio held for a manual commit.
    buffer: Vec<i16>,
    /// Audio appended since the last commit or clear.
    appended: bool,
    /// A committed spoken turn whose response the session starts by itself.
    spoken_turn_pending: bool,
    /// A typed message waiting for `response.create`.
    text_pending: bool,
    /// Speech (input item id → start ms) for the transcription's duration.
    speech_start_ms: HashMap<String, u64>,
    speech_secs: HashMap<String, f64>,
    current: Option<Current>,
    /// Recent assistant items and their audio length, ms.
    assistant_items: VecDeque<(String, u64)>,
    /// Recent items as last sent in `conversation.item.done`, for
    /// `conversation.item.retrieve`.
    done_items: VecDeque<(String, Value)>,
    /// `metadata` of the next `response.create`, echoed on its response.
    next_metadata: Value,
    /// `session.updated` answers to the opening update, which the client did not send.
    unasked_updates: usize,
}

impl Translator {
    /// A translator for session `session_id`, configured as `config`.
    pub fn new(session_id: &str, config: Config, extras: bool) -> Self {
        Self {
            session_id: session_id.to_owned(),
            config,
            pending_configs: VecDeque::new(),
            extras,
            events: 0,
            last_item: None,
            item_ids: HashMap::new(),
            next_spoken_item: None,
            buffer: Vec::new(),
            appended: false,
            spoken_turn_pending: false,
            text_pending: false,
            speech_start_ms: HashMap::new(),
            speech_secs: HashMap::new(),
            current: None,
            assistant_items: VecDeque::new(),
            done_items: VecDeque::new(),
            next_metadata: Value::Null,
            unasked_updates: 0,
        }
    }

    /// The session input that applies a configuration the translator already has (a
    /// client secret's): its `session.updated` is not passed on.
    pub fn opening(&mut self, update: adam_actors::events::SessionUpdate) -> ToSession {
        self.unasked_updates += 1;
        ToSession::Event(ClientEvent::SessionUpdate { session: update })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn event(&mut self, kind: &str, fields: Value) -> Value {
        if kind == "conversation.item.done"
            && let Some(id) = fields["item"]["id"].as_str()
        {
            let item = fields["item"].clone();
            self.done_items.retain(|(known, _)| known != id);
            self.done_items.push_back((id.to_owned(), item));
            if self.done_items.len() > REMEMBERED_ITEMS {
                self.done_items.pop_front();
            }
        }
        self.events += 1;
        let mut event = json!({
            "type": kind,
            "event_id": format!("event_{}_{}", short(&self.session_id), self.events),
        });
        if let (Some(event), Value::Object(fields)) = (event.as_object_mut(), fields) {
            event.extend(fields);
        }
        event
    }

    /// An `error` event in the API's shape.
    pub fn error(
        &mut self,
        kind: &str,
        code: &str,
        message: impl Into<String>,
        param: Option<&str>,
        event_id: Option<&str>,
    ) -> Value {
        let message: String = message.into();
        self.event(
            "error",
            json!({"error": {
                "type": kind,
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            }}),
        )
    }

    fn new_item_id(&mut self) -> String {
        self.events += 1;
        format!("item_{}{}", short(&self.session_id), self.events)
    }

    // ---- client → session --------------------------------------------------------

    /// Translates one client text message.
    pub fn client(&mut self, text: &str) -> Outcome {
        let mut out = Outcome::default();
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let error = self.error(
                    "invalid_request_error",
                    "invalid_json",
                    format!("the message is not JSON: {e}"),
                    None,
                    None,
                );
                out.replies.push(error);
                return out;
            }
        };
        let event_id = value
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let event_id = event_id.as_deref();
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            let error = self.error(
                "invalid_request_error",
                "missing_required_parameter",
                "missing required parameter: `type`",
                Some("type"),
                event_id,
            );
            out.replies.push(error);
            return out;
        };
        match kind {
            "session.update" => self.session_update(&value, event_id, &mut out),
            "input_audio_buffer.append" => self.append(&value, event_id, &mut out),
            "input_audio_buffer.commit" => self.commit(event_id, &mut out),
            "input_audio_buffer.clear" => {
                // With turn detection on, audio already given to Adam's VAD stays there.
                self.buffer.clear();
                self.appended = false;
                let cleared = self.event("input_audio_buffer.cleared", json!({}));
                out.replies.push(cleared);
            }
            "conversation.item.create" => self.item_create(&value, event_id, &mut out),
            "response.create" => {
                if let Some(metadata) = value.pointer("/response/metadata") {
                    self.next_metadata = metadata.clone();
                }
                // A spoken turn is answered by the session itself: the client's
                // `response.create` after its commit (turn_detection: null) asks for that
                // same answer.
                if self.spoken_turn_pending && !self.text_pending {
                    return out;
                }
                self.text_pending = false;
                out.to_session
                    .push(ToSession::Event(ClientEvent::ResponseCreate {}));
            }
            "response.cancel" => {
                if let Some(current) = self.current.as_mut() {
                    current.cancel_reason.get_or_insert("client_cancelled");
                    out.to_session
                        .push(ToSession::Event(ClientEvent::ResponseCancel {}));
                } else {
                    let error = self.error(
                        "invalid_request_error",
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found",
                        None,
                        event_id,
                    );
                    out.replies.push(error);
                }
            }
            "conversation.item.truncate" => self.truncate(&value, event_id, &mut out),
            "conversation.item.retrieve" => self.retrieve(&value, event_id, &mut out),
            "conversation.item.delete" | "output_audio_buffer.clear" => {
                let error = self.error(
                    "invalid_request_error",
                    "unsupported_event",
                    format!("`{kind}` is not supported by Adam (see docs/protocol.md#openai-realtime-compatibility)"),
                    Some("type"),
                    event_id,
                );
                out.replies.push(error);
            }
            other => {
                let error = self.error(
                    "invalid_request_error",
                    "invalid_value",
                    format!("Invalid value: '{other}'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', 'conversation.item.retrieve', 'response.create', and 'response.cancel'."),
                    Some("type"),
                    event_id,
                );
                out.replies.push(error);
            }
        }
        out
    }

    fn session_update(&mut self, value: &Value, event_id: Option<&str>, out: &mut Outcome) {
        let base = self.pending_configs.back().unwrap_or(&self.config).clone();
        match base.merge(value.get("session").unwrap_or(&Value::Null)) {
            Ok((next, update)) => {
                // A turn detection switched on again releases a held manual buffer to the VAD.
                if matches!(next.turn, TurnMode::Vad { .. }) && !self.buffer.is_empty() {
                    out.to_session
                        .push(ToSession::Audio(std::mem::take(&mut self.buffer)));
                }
                self.pending_configs.push_back(next);
                // Even an update Adam needs nothing from is sent: the session's
                // `session.updated` answers it in order.
                out.to_session
                    .push(ToSession::Event(ClientEvent::SessionUpdate {
                        session: update,
                    }));
            }
            Err(refusal) => {
                let error = self.error(
                    "invalid_request_error",
                    "invalid_value",
                    refusal.message,
                    Some(&refusal.param),
                    event_id,
                );
                out.replies.push(error);
            }
        }
    }

    fn append(&mut self, value: &Value, event_id: Option<&str>, out: &mut Outcome) {
        let samples = value
            .get("audio")
            .and_then(Value::as_str)
            .and_then(|b64| BASE64.decode(b64).ok())
            .and_then(|bytes| self.config.input.decode(&bytes));
        let Some(samples) = samples else {
            let error = self.error(
                "invalid_request_error",
                "invalid_value",
                "`audio` must be base64 of the session's input format (audio/pcm: PCM16 little-endian, an even number of bytes)",
                Some("audio"),
                event_id,
            );
            out.replies.push(error);
            return;
        };
        if samples.is_empty() {
            return;
        }
        self.appended = true;
        if self.config.turn == TurnMode::Manual {
            let cap = MAX_MANUAL_BUFFER_SECS * self.config.input.rate() as usize;
            if self.buffer.len() + samples.len() > cap {
                let error = self.error(
                    "invalid_request_error",
                    "input_audio_buffer_too_long",
                    format!("the input audio buffer holds at most {MAX_MANUAL_BUFFER_SECS} s: commit or clear it"),
                    Some("audio"),
                    event_id,
                );
                out.replies.push(error);
                return;
            }
            self.buffer.extend_from_slice(&samples);
        } else {
            out.to_session.push(ToSession::Audio(samples));
        }
    }

    fn commit(&mut self, event_id: Option<&str>, out: &mut Outcome) {
        if !self.appended {
            let error = self.error(
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer is empty.",
                None,
                event_id,
            );
            out.replies.push(error);
            return;
        }
        self.appended = false;
        self.spoken_turn_pending = true;
        if self.config.turn == TurnMode::Manual {
            // The API commits at once; Adam hears the held audio now and ends the turn.
            let item_id = self.new_item_id();
            let committed = self.event(
                "input_audio_buffer.committed",
                json!({"item_id": item_id, "previous_item_id": self.last_item}),
            );
            out.replies.push(committed);
            let added = self.user_audio_item_added(&item_id);
            out.replies.push(added);
            self.next_spoken_item = Some(item_id);
            out.to_session
                .push(ToSession::Audio(std::mem::take(&mut self.buffer)));
        }
        out.to_session
            .push(ToSession::Event(ClientEvent::InputAudioBufferCommit {}));
    }

    fn item_create(&mut self, value: &Value, event_id: Option<&str>, out: &mut Outcome) {
        let item = value.get("item").unwrap_or(&Value::Null);
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
        let texts: Vec<&str> = item
            .get("content")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("input_text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let text = texts.join(" ").trim().to_owned();
        if kind != "message" || role != "user" {
            let error = self.error(
                "invalid_request_error",
                "unsupported_item",
                "Adam accepts user messages with input_text content (function calls, system and assistant items are not supported yet)",
                Some("item.type"),
                event_id,
            );
            out.replies.push(error);
            return;
        }
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            let error = self.error(
                "invalid_request_error",
                "invalid_value",
                format!("a user message needs 1 to {MAX_TEXT_CHARS} characters of input_text"),
                Some("item.content"),
                event_id,
            );
            out.replies.push(error);
            return;
        }
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.len() <= 64 => id.to_owned(),
            _ => self.new_item_id(),
        };
        let item = json!({
            "id": id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": text}],
        });
        let previous = self.last_item.replace(id);
        let added = self.event(
            "conversation.item.added",
            json!({"item": item, "previous_item_id": previous}),
        );
        let done = self.event(
            "conversation.item.done",
            json!({"item": item, "previous_item_id": previous}),
        );
        out.replies.extend([added, done]);
        self.text_pending = true;
        out.to_session
            .push(ToSession::Event(ClientEvent::ConversationItemCreate {
                item: ClientItem {
                    kind: "message".into(),
                    role: "user".into(),
                    content: vec![ContentPart {
                        kind: "input_text".into(),
                        text,
                    }],
                },
            }));
    }

    /// `conversation.item.retrieve`: one of the recent items as its `conversation.item.done`
    /// last showed it (the last 64 are kept).
    fn retrieve(&mut self, value: &Value, event_id: Option<&str>, out: &mut Outcome) {
        let item_id = value.get("item_id").and_then(Value::as_str).unwrap_or("");
        let found = self
            .done_items
            .iter()
            .find(|(id, _)| id == item_id)
            .map(|(_, item)| item.clone());
        let reply = match found {
            Some(item) => self.event("conversation.item.retrieved", json!({"item": item})),
            None => self.error(
                "invalid_request_error",
                "item_retrieve_invalid_item_id",
                format!("Item with item_id not found: {item_id}"),
                Some("item_id"),
                event_id,
            ),
        };
        out.replies.push(reply);
    }

    fn truncate(&mut self, value: &Value, event_id: Option<&str>, out: &mut Outcome) {
        let item_id = value.get("item_id").and_then(Value::as_str).unwrap_or("");
        let content_index = value
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(audio_end_ms) = value.get("audio_end_ms").and_then(Value::as_u64) else {
            let error = self.error(
                "invalid_request_error",
                "missing_required_parameter",
                "missing required parameter: `audio_end_ms`",
                Some("audio_end_ms"),
                event_id,
            );
            out.replies.push(error);
            return;
        };
        let in_progress = self.current.as_ref().is_some_and(|c| c.item_id == item_id);
        let known = in_progress || self.assistant_items.iter().any(|(id, _)| id == item_id);
        if !known {
            let error = self.error(
                "invalid_request_error",
                "item_truncate_invalid_item_id",
                format!("Item with item_id not found: {item_id}"),
                Some("item_id"),
                event_id,
            );
            out.replies.push(error);
            return;
        }
        if in_progress {
            // The client stopped playing it: stop producing the rest.
            if let Some(current) = self.current.as_mut() {
                current.cancel_reason.get_or_insert("client_cancelled");
            }
            out.to_session
                .push(ToSession::Event(ClientEvent::ResponseCancel {}));
        }
        let truncated = self.event(
            "conversation.item.truncated",
            json!({"item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms}),
        );
        out.replies.push(truncated);
    }
}

/// The first eight characters of a session id, to keep generated ids short.
fn short(id: &str) -> &str {
    let end = id.char_indices().nth(8).map(|(i, _)| i).unwrap_or(id.len());
    &id[..end]
}

#[cfg(test)]
mod tests {
    use adam_actors::events::{
        ErrorInfo, ResponseRef, ResponseSummary, ServerEvent, SessionInfo, TurnDetection,
    };
    use adam_actors::ports::{ResponseMetrics, ResponseStatus, TurnUsage};

    use super::*;

    fn translator() -> Translator {
        Translator::new(
            "sess-1234-5678",
            Config::new("m".into(), "en".into(), 500),
            false,
        )
    }

    fn info() -> SessionInfo {
        SessionInfo {
            id: "s".into(),
            input_sample_rate: 24_000,
            output_sample_rate: 24_000,
            voice: "en".into(),
            turn_detection: TurnDetection {
                silence_duration_ms: 500,
                min_speech_ms: 200,
                max_turn_ms: 30_000,
            },
        }
    }

    fn kinds(events: &[Value]) -> Vec<&str> {
        events.iter().filter_map(|e| e["type"].as_str()).collect()
    }

    fn created(id: &str) -> ServerEvent {
        ServerEvent::ResponseCreated {
            response: ResponseRef {
                id: id.into(),
                status: "in_progress".into(),
            },
        }
    }

    fn done(id: &str, status: ResponseStatus) -> ServerEvent {
        ServerEvent::ResponseDone {
            response: ResponseSummary {
                id: id.into(),
                status,
                output_text: "Eight.".into(),
                citations: Vec::new(),
                metrics: ResponseMetrics::default(),
                usage: TurnUsage::default(),
            },
        }
    }

    fn append(t: &mut Translator, samples: usize) -> Outcome {
        let audio = BASE64.encode(vec![0u8; samples * 2]);
        t.client(&json!({"type": "input_audio_buffer.append", "audio": audio}).to_string())
    }

    #[test]
    fn a_manual_commit_names_its_item_first_and_the_transcript_follows_that_name() {
        let mut t = translator();
        let update = t.client(
            r#"{"type":"session.update","session":{"audio":{"input":{"turn_detection":null}}}}"#,
        );
        assert!(update.replies.is_empty());
        t.server(&ServerEvent::SessionUpdated { session: info() });
        assert_eq!(t.config().turn, TurnMode::Manual);

        let held = append(&mut t, 2_400);
        assert!(held.to_session.is_empty(), "held until the commit");
        let commit = t.client(r#"{"type":"input_audio_buffer.commit"}"#);
        assert_eq!(
            kinds(&commit.replies),
            ["input_audio_buffer.committed", "conversation.item.added"]
        );
        let item = commit.replies[0]["item_id"]
            .as_str()
            .expect("item")
            .to_owned();
        assert!(
            matches!(&commit.to_session[..], [ToSession::Audio(a), ToSession::Event(ClientEvent::InputAudioBufferCommit {})] if a.len() == 2_400)
        );
        // The client asks for the answer the session gives by itself: nothing more.
        let create = t.client(r#"{"type":"response.create"}"#);
        assert!(create.to_session.is_empty() && create.replies.is_empty());

        // Adam's own item id is never seen; its VAD events are not sent.
        let started = t.server(&ServerEvent::SpeechStarted {
            item_id: "item_adam".into(),
            audio_start_ms: 0,
        });
        assert!(started.is_empty());
        let completed = t.server(&ServerEvent::TranscriptionCompleted {
            item_id: "item_adam".into(),
            transcript: "hi".into(),
        });
        assert_eq!(completed[0]["item_id"], item.as_str());
        assert_eq!(completed[1]["item"]["content"][0]["transcript"], "hi");
    }

    #[test]
    fn a_completed_item_can_be_retrieved_and_an_unknown_one_is_an_error() {
        let mut t = translator();
        let typed = t.client(
            r#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"When do you open?"}]}}"#,
        );
        let id = typed.replies[1]["item"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let found = t.client(
            &json!({"type": "conversation.item.retrieve", "item_id": id, "event_id": "e1"})
                .to_string(),
        );
        assert_eq!(kinds(&found.replies), ["conversation.item.retrieved"]);
        assert_eq!(found.replies[0]["item"]["id"], id.as_str());
        assert_eq!(
            found.replies[0]["item"]["content"][0]["text"],
            "When do you open?"
        );
        assert!(found.to_session.is_empty());

        // The assistant's item is kept as its last `conversation.item.done` showed it.
        t.server(&created("r1"));
        let finished = t.server(&done("r1", ResponseStatus::Completed));
        let answer = finished
            .iter()
            .find(|e| e["type"] == "conversation.item.done")
            .expect("the answer's item")["item"]
            .clone();
        let again = t.client(
            &json!({"type": "conversation.item.retrieve", "item_id": answer["id"]}).to_string(),
        );
        assert_eq!(again.replies[0]["item"], answer);

        let missing = t.client(
            r#"{"type":"conversation.item.retrieve","item_id":"item_nope","event_id":"e2"}"#,
        );
        assert_eq!(kinds(&missing.replies), ["error"]);
        let error = &missing.replies[0]["error"];
        assert_eq!(error["code"], "item_retrieve_invalid_item_id");
        assert_eq!(error["param"], "item_id");
        assert_eq!(error["event_id"], "e2");
    }

    #[test]
    fn a_refused_update_leaves_the_configuration_and_an_accepted_one_applies_in_order() {
        let mut t = translator();
        t.client(r#"{"type":"session.update","session":{"voice":"x","audio":{"output":{"format":{"type":"audio/pcmu"}}}}}"#);
        t.server(&ServerEvent::Error {
            error: ErrorInfo {
                code: "invalid_session_update".into(),
                message: "no".into(),
            },
        });
        assert_eq!(t.config().output, super::super::config::AudioFormat::Pcm);
        t.client(r#"{"type":"session.update","session":{"audio":{"output":{"format":{"type":"audio/pcmu"}}}}}"#);
        let updated = t.server(&ServerEvent::SessionUpdated { session: info() });
        assert_eq!(
            updated[0]["session"]["audio"]["output"]["format"]["type"],
            "audio/pcmu"
        );
        // μ-law: one byte a sample.
        t.server(&created("r1"));
        let delta = t.audio(&[0; 160]).expect("delta");
        let bytes = BASE64
            .decode(delta["delta"].as_str().expect("b64"))
            .expect("decodes");
        assert_eq!(bytes, vec![0xff; 160]);
    }

    #[test]
    fn a_barge_in_cancels_with_turn_detected_and_text_only_sessions_get_text_events() {
        let mut t = translator();
        t.server(&created("r1"));
        assert!(t.audio(&[1; 480]).is_some());
        t.server(&ServerEvent::SpeechStarted {
            item_id: "item_2".into(),
            audio_start_ms: 900,
        });
        let events = t.server(&done("r1", ResponseStatus::Cancelled));
        let last = events.last().expect("done");
        assert_eq!(last["type"], "response.done");
        assert_eq!(last["response"]["status"], "cancelled");
        assert_eq!(
            last["response"]["status_details"]["reason"],
            "turn_detected"
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");

        t.client(r#"{"type":"session.update","session":{"output_modalities":["text"]}}"#);
        t.server(&ServerEvent::SessionUpdated { session: info() });
        t.server(&created("r2"));
        assert!(t.audio(&[1; 480]).is_none(), "no audio for a text session");
        let delta = t.server(&ServerEvent::OutputTextDelta {
            response_id: "r2".into(),
            delta: "Eight.".into(),
        });
        assert_eq!(delta[0]["type"], "response.output_text.delta");
        let events = t.server(&done("r2", ResponseStatus::Completed));
        assert_eq!(
            kinds(&events),
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done"
            ]
        );
        assert_eq!(events[0]["text"], "Eight.");
        // Every event carries a distinct id.
        let ids: std::collections::HashSet<&str> = events
            .iter()
            .filter_map(|e| e["event_id"].as_str())
            .collect();
        assert_eq!(ids.len(), events.len());
    }
}
