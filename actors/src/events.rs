//! The realtime protocol's events, named after the OpenAI Realtime API where the concept
//! matches, and the items a session sends towards its transport. See `docs/protocol.md`.

use serde::{Deserialize, Serialize};

use crate::ports::{AvatarStream, Passage, ResponseMetrics, ResponseStatus, TurnUsage};

/// Session parameters a client sees and may change with `session.update`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Sample rate of the client's PCM16 input.
    pub input_sample_rate: u32,
    /// Sample rate of the PCM16 audio Adam sends.
    pub output_sample_rate: u32,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: String,
    /// End-of-turn detection.
    pub turn_detection: TurnDetection,
}

/// End-of-turn detection settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TurnDetection {
    /// Silence that ends a turn, ms.
    pub silence_duration_ms: u32,
    /// Speech needed before it counts (guards against coughs and backchannels), ms.
    pub min_speech_ms: u32,
    /// Longest turn before it is cut, ms.
    pub max_turn_ms: u32,
}

/// A response reference in `response.created`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponseRef {
    /// Response id.
    pub id: String,
    /// Always `in_progress` here.
    pub status: String,
}

/// A finished response in `response.done`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponseSummary {
    /// Response id.
    pub id: String,
    /// completed | cancelled | failed.
    pub status: ResponseStatus,
    /// The text as spoken (up to the interruption when cancelled).
    pub output_text: String,
    /// Passages the answer is grounded on.
    pub citations: Vec<Passage>,
    /// Stage timings.
    pub metrics: ResponseMetrics,
    /// The work it cost.
    #[serde(default)]
    pub usage: TurnUsage,
}

/// Error detail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Stable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// Events Adam sends (JSON text frames / data-channel messages).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// First event of every session.
    #[serde(rename = "session.created")]
    SessionCreated {
        /// Parameters.
        session: SessionInfo,
    },
    /// After `session.update`.
    #[serde(rename = "session.updated")]
    SessionUpdated {
        /// Parameters now in force.
        session: SessionInfo,
    },
    /// Speech began (after `min_speech_ms`).
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        /// Input item this speech becomes.
        item_id: String,
        /// Position in the input audio, ms.
        audio_start_ms: u64,
    },
    /// Speech ended (after `silence_duration_ms` of silence, or commit, or the length cap).
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        /// Input item.
        item_id: String,
        /// Position in the input audio, ms.
        audio_end_ms: u64,
    },
    /// Interim transcript text.
    #[serde(rename = "conversation.item.input_audio_transcription.delta")]
    TranscriptionDelta {
        /// Input item.
        item_id: String,
        /// New text.
        delta: String,
    },
    /// Final transcript of the user's turn.
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    TranscriptionCompleted {
        /// Input item.
        item_id: String,
        /// The transcript.
        transcript: String,
    },
    /// The assistant starts answering.
    #[serde(rename = "response.created")]
    ResponseCreated {
        /// The response.
        response: ResponseRef,
    },
    /// Answer text as it is generated.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// Response id.
        response_id: String,
        /// New text.
        delta: String,
    },
    /// Binary audio frames of this response follow.
    #[serde(rename = "response.output_audio.started")]
    OutputAudioStarted {
        /// Response id.
        response_id: String,
        /// Rate of the PCM16 frames.
        sample_rate: u32,
    },
    /// A mouth shape for the built-in avatar, timed against this response's audio.
    #[serde(rename = "avatar.viseme")]
    AvatarViseme {
        /// Response id.
        response_id: String,
        /// Viseme name (sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, ih, oh, ou).
        viseme: String,
        /// Offset from the first audio sample of the response, ms.
        audio_offset_ms: u32,
        /// How long to hold it, ms.
        duration_ms: u32,
    },
    /// A remote avatar is ready: join its room and show it; from the next response on it
    /// speaks the answers (the client stops playing Adam's own audio frames).
    #[serde(rename = "avatar.stream")]
    AvatarStream {
        /// Renderer (`heygen`).
        provider: String,
        /// LiveKit server URL.
        livekit_url: String,
        /// LiveKit access token for the browser.
        access_token: String,
    },
    /// Barge-in: drop every buffered audio frame of this response now.
    #[serde(rename = "response.output_audio.cleared")]
    OutputAudioCleared {
        /// Response id.
        response_id: String,
    },
    /// The response ended.
    #[serde(rename = "response.done")]
    ResponseDone {
        /// Summary.
        response: ResponseSummary,
    },
    /// The server is shutting down: the answer in progress finishes, then the socket
    /// closes with 1001; reconnect elsewhere.
    #[serde(rename = "session.closing")]
    SessionClosing {
        /// Why.
        reason: String,
    },
    /// The last event of a WebRTC session (the WebSocket says this with its close frame):
    /// the peer connection closes next.
    #[serde(rename = "session.closed")]
    SessionClosed {
        /// Close code, as the WebSocket close codes.
        code: u16,
        /// Why.
        reason: String,
    },
    /// Something went wrong; the session goes on unless a close follows.
    #[serde(rename = "error")]
    Error {
        /// Detail.
        error: ErrorInfo,
    },
}

impl ServerEvent {
    /// The `avatar.stream` event of a ready remote avatar.
    pub fn avatar_stream(stream: AvatarStream) -> Self {
        ServerEvent::AvatarStream {
            provider: stream.provider,
            livekit_url: stream.livekit_url,
            access_token: stream.access_token,
        }
    }

    /// An `error` event.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerEvent::Error {
            error: ErrorInfo {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// The event's `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerEvent::SessionCreated { .. } => "session.created",
            ServerEvent::SessionUpdated { .. } => "session.updated",
            ServerEvent::SpeechStarted { .. } => "input_audio_buffer.speech_started",
            ServerEvent::SpeechStopped { .. } => "input_audio_buffer.speech_stopped",
            ServerEvent::TranscriptionDelta { .. } => {
                "conversation.item.input_audio_transcription.delta"
            }
            ServerEvent::TranscriptionCompleted { .. } => {
                "conversation.item.input_audio_transcription.completed"
            }
            ServerEvent::ResponseCreated { .. } => "response.created",
            ServerEvent::OutputTextDelta { .. } => "response.output_text.delta",
            ServerEvent::OutputAudioStarted { .. } => "response.output_audio.started",
            ServerEvent::AvatarViseme { .. } => "avatar.viseme",
            ServerEvent::AvatarStream { .. } => "avatar.stream",
            ServerEvent::OutputAudioCleared { .. } => "response.output_audio.cleared",
            ServerEvent::ResponseDone { .. } => "response.done",
            ServerEvent::SessionClosing { .. } => "session.closing",
            ServerEvent::SessionClosed { .. } => "session.closed",
            ServerEvent::Error { .. } => "error",
        }
    }
}

/// `session.update` body: every field optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionUpdate {
    /// New input rate (8000–48000).
    pub input_sample_rate: Option<u32>,
    /// New output rate (8000–48000).
    pub output_sample_rate: Option<u32>,
    /// New voice.
    pub voice: Option<String>,
    /// New turn detection settings.
    pub turn_detection: Option<TurnDetectionUpdate>,
    /// Instructions appended to the dealership's persona for the next answers (at most
    /// [`MAX_INSTRUCTIONS_CHARS`] characters; empty removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// Longest `instructions` a client may add to the persona.
pub const MAX_INSTRUCTIONS_CHARS: usize = 4_000;

/// Partial turn detection settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TurnDetectionUpdate {
    /// Silence that ends a turn, ms.
    pub silence_duration_ms: Option<u32>,
    /// Speech needed before it counts, ms.
    pub min_speech_ms: Option<u32>,
    /// Longest turn, ms.
    pub max_turn_ms: Option<u32>,
}

/// A content part of a typed user message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentPart {
    /// `input_text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    pub text: String,
}

/// A conversation item sent by the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientItem {
    /// `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `user`.
    pub role: String,
    /// Text parts.
    pub content: Vec<ContentPart>,
}

/// Events a client sends (JSON text frames / data-channel messages).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ClientEvent {
    /// Change session parameters.
    #[serde(rename = "session.update")]
    SessionUpdate {
        /// Changes.
        session: SessionUpdate,
    },
    /// Add a typed user message (answered on `response.create`).
    #[serde(rename = "conversation.item.create")]
    ConversationItemCreate {
        /// The message.
        item: ClientItem,
    },
    /// Answer the latest user input now.
    #[serde(rename = "response.create")]
    ResponseCreate {},
    /// Stop the current response.
    #[serde(rename = "response.cancel")]
    ResponseCancel {},
    /// End the user's turn now (push-to-talk).
    #[serde(rename = "input_audio_buffer.commit")]
    InputAudioBufferCommit {},
}

/// Why a client event was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not an object with a string `type`.
    #[error("malformed JSON event: {0}")]
    Malformed(String),
    /// A `type` this server does not know.
    #[error("unknown event type `{0}`")]
    Unknown(String),
    /// Known type, wrong fields.
    #[error("invalid `{kind}` event: {detail}")]
    Invalid {
        /// Event type.
        kind: String,
        /// What is wrong.
        detail: String,
    },
}

impl ParseError {
    /// The `error.code` for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Malformed(_) => "malformed_event",
            ParseError::Unknown(_) => "unknown_event",
            ParseError::Invalid { .. } => "invalid_event",
        }
    }
}

const CLIENT_TYPES: [&str; 5] = [
    "session.update",
    "conversation.item.create",
    "response.create",
    "response.cancel",
    "input_audio_buffer.commit",
];

/// Parses one client event, telling malformed, unknown and invalid apart.
pub fn parse_client_event(text: &str) -> Result<ClientEvent, ParseError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ParseError::Malformed("missing string field `type`".into()))?
        .to_owned();
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(ParseError::Unknown(kind));
    }
    serde_json::from_value(value).map_err(|e| ParseError::Invalid {
        kind,
        detail: e.to_string(),
    })
}

/// What a session hands its transport, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A JSON event.
    Event(ServerEvent),
    /// One frame of PCM16 LE mono audio at the session's output rate.
    Audio(Vec<i16>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_events_and_tells_errors_apart() {
        assert_eq!(
            parse_client_event(r#"{"type":"response.cancel"}"#),
            Ok(ClientEvent::ResponseCancel {})
        );
        let update = parse_client_event(
            r#"{"type":"session.update","session":{"input_sample_rate":24000,"turn_detection":{"silence_duration_ms":300}}}"#,
        )
        .expect("valid");
        match update {
            ClientEvent::SessionUpdate { session } => {
                assert_eq!(session.input_sample_rate, Some(24000));
                assert_eq!(
                    session.turn_detection.and_then(|t| t.silence_duration_ms),
                    Some(300)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_client_event("{nope").map_err(|e| e.code()),
            Err("malformed_event")
        );
        assert_eq!(
            parse_client_event(r#"{"type":"x.y"}"#).map_err(|e| e.code()),
            Err("unknown_event")
        );
        assert_eq!(
            parse_client_event(r#"{"type":"session.update","session":{"bogus":1}}"#)
                .map_err(|e| e.code()),
            Err("invalid_event")
        );
    }

    #[test]
    fn server_events_carry_their_type() {
        let json = serde_json::to_value(ServerEvent::error("x", "y")).expect("json");
        assert_eq!(json["type"], "error");
        assert_eq!(json["error"]["code"], "x");
        let cleared = ServerEvent::OutputAudioCleared {
            response_id: "r".into(),
        };
        assert_eq!(
            serde_json::to_value(&cleared).expect("json")["type"],
            cleared.kind()
        );
    }
}
