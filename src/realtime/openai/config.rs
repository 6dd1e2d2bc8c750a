//! The OpenAI session configuration as one connection sees it: audio formats, turn
//! detection, instructions, voice, modalities. `session.update` is validated and merged
//! here, and turned into the Adam `session.update` the session understands.

use adam_actors::events::{MAX_INSTRUCTIONS_CHARS, SessionUpdate, TurnDetectionUpdate};
use serde_json::{Value, json};

use super::g711;

/// Rate of `audio/pcm`: the API fixes it at 24 kHz.
pub const PCM_RATE: u32 = 24_000;
/// Rate of `audio/pcmu` and `audio/pcma`.
const G711_RATE: u32 = 8_000;

/// The voices the OpenAI API names: accepted and echoed, but Adam speaks with the
/// dealership's voice (it has none of these).
const OPENAI_VOICES: [&str; 10] = [
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];

/// An audio format of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// PCM16 little-endian, 24 kHz mono.
    Pcm,
    /// G.711 μ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

impl AudioFormat {
    /// Samples per second.
    pub fn rate(self) -> u32 {
        match self {
            AudioFormat::Pcm => PCM_RATE,
            AudioFormat::Pcmu | AudioFormat::Pcma => G711_RATE,
        }
    }

    /// The format object as the API writes it.
    pub fn json(self) -> Value {
        match self {
            AudioFormat::Pcm => json!({"type": "audio/pcm", "rate": PCM_RATE}),
            AudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
            AudioFormat::Pcma => json!({"type": "audio/pcma"}),
        }
    }

    /// Samples from the bytes of one `input_audio_buffer.append`; `None` for PCM of an
    /// odd length.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        match self {
            AudioFormat::Pcm => adam_actors::audio::pcm16_from_le_bytes(bytes),
            AudioFormat::Pcmu => Some(bytes.iter().map(|b| g711::ulaw_decode(*b)).collect()),
            AudioFormat::Pcma => Some(bytes.iter().map(|b| g711::alaw_decode(*b)).collect()),
        }
    }

    /// The bytes of output samples.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            AudioFormat::Pcm => adam_actors::audio::pcm16_to_le_bytes(samples),
            AudioFormat::Pcmu => samples.iter().map(|s| g711::ulaw_encode(*s)).collect(),
            AudioFormat::Pcma => samples.iter().map(|s| g711::alaw_encode(*s)).collect(),
        }
    }

    fn parse(value: &Value, param: &str) -> Result<Self, Refusal> {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "audio/pcm" => match value.get("rate") {
                None | Some(Value::Null) => Ok(AudioFormat::Pcm),
                Some(rate) if rate.as_u64() == Some(u64::from(PCM_RATE)) => Ok(AudioFormat::Pcm),
                Some(_) => Err(Refusal::new(
                    format!("{param}.rate"),
                    "audio/pcm is 24000 Hz only",
                )),
            },
            "audio/pcmu" => Ok(AudioFormat::Pcmu),
            "audio/pcma" => Ok(AudioFormat::Pcma),
            _ => Err(Refusal::new(
                format!("{param}.type"),
                format!(
                    "unsupported audio format `{kind}`: use audio/pcm, audio/pcmu or audio/pcma"
                ),
            )),
        }
    }
}

/// A `session.update` the API refuses: the `error` event's `param` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The offending field (`session.audio.input.format.type`).
    pub param: String,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// How the end of the caller's turn is found.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnMode {
    /// Adam's VAD ends turns (`server_vad` / `semantic_vad`); `settings` is echoed.
    Vad {
        /// The object as the client set it, with defaults filled in.
        settings: Value,
        /// Silence that ends a turn, ms (what Adam's endpointer uses).
        silence_ms: u32,
    },
    /// `turn_detection: null`: the client commits the buffer itself.
    Manual,
}

/// The session as the client configured it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The model the client asked for (echoed, selects nothing).
    pub model: String,
    /// Appended to the dealership's persona.
    pub instructions: String,
    /// Format of `input_audio_buffer.append`.
    pub input: AudioFormat,
    /// Format of `response.output_audio.delta`.
    pub output: AudioFormat,
    /// Voice as the client named it.
    pub voice: String,
    /// Turn detection.
    pub turn: TurnMode,
    /// `["audio"]` or `["text"]`.
    pub text_only: bool,
    /// Echoed fields Adam accepts but does not act on.
    pub tools: Value,
    /// Echoed.
    pub tool_choice: Value,
    /// Echoed.
    pub transcription: Value,
    /// Echoed.
    pub noise_reduction: Value,
    /// Echoed.
    pub speed: Value,
    /// Echoed.
    pub max_output_tokens: Value,
}

/// Adam's silence before the end of a turn must be within its endpointer's range.
const SILENCE_RANGE: (u32, u32) = (100, 5_000);

impl Config {
    /// The configuration a connection starts with.
    pub fn new(model: String, voice: String, silence_ms: u32) -> Self {
        Self {
            model,
            instructions: String::new(),
            input: AudioFormat::Pcm,
            output: AudioFormat::Pcm,
            voice,
            turn: TurnMode::Vad {
                settings: server_vad_defaults(silence_ms),
                silence_ms,
            },
            text_only: false,
            tools: json!([]),
            tool_choice: json!("auto"),
            transcription: Value::Null,
            noise_reduction: Value::Null,
            speed: json!(1.0),
            max_output_tokens: json!("inf"),
        }
    }

    /// The `session` object of `session.created` / `session.updated`.
    pub fn session_json(&self, id: &str) -> Value {
        let turn_detection = match &self.turn {
            TurnMode::Vad { settings, .. } => settings.clone(),
            TurnMode::Manual => Value::Null,
        };
        json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": id,
            "model": self.model,
            "output_modalities": [if self.text_only { "text" } else { "audio" }],
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": null,
            "prompt": null,
            "expires_at": 0,
            "include": null,
            "audio": {
                "input": {
                    "format": self.input.json(),
                    "transcription": self.transcription,
                    "noise_reduction": self.noise_reduction,
                    "turn_detection": turn_detection,
                },
                "output": {
                    "format": self.output.json(),
                    "voice": self.voice,
                    "speed": self.speed,
                },
            },
        })
    }

    /// Merges a `session.update`'s `session` object into a copy of this configuration,
    /// and says what Adam's session must change. Fields the API has but Adam cannot use
    /// are accepted and ignored, as the API ignores what a model does not support.
    pub fn merge(&self, session: &Value) -> Result<(Config, SessionUpdate), Refusal> {
        let Some(session) = session.as_object() else {
            return Err(Refusal::new("session", "must be an object"));
        };
        let mut next = self.clone();
        let mut update = SessionUpdate::default();
        match session.get("type").and_then(Value::as_str) {
            None | Some("realtime") => {}
            Some(other) => {
                return Err(Refusal::new(
                    "session.type",
                    format!("`{other}` sessions are not supported: use `realtime`"),
                ));
            }
        }
        if let Some(model) = session.get("model").and_then(Value::as_str) {
            next.model = model.to_owned();
        }
        if let Some(instructions) = session.get("instructions") {
            let text = instructions
                .as_str()
                .ok_or_else(|| Refusal::new("session.instructions", "must be a string"))?;
            if text.chars().count() > MAX_INSTRUCTIONS_CHARS {
                return Err(Refusal::new(
                    "session.instructions",
                    format!("at most {MAX_INSTRUCTIONS_CHARS} characters"),
                ));
            }
            next.instructions = text.to_owned();
            update.instructions = Some(text.to_owned());
        }
        if let Some(modalities) = session.get("output_modalities") {
            next.text_only = match modalities.as_array().map(Vec::as_slice) {
                Some([m]) if m == "audio" => false,
                Some([m]) if m == "text" => true,
                _ => {
                    return Err(Refusal::new(
                        "session.output_modalities",
                        "must be [\"audio\"] or [\"text\"]",
                    ));
                }
            };
        }
        for (field, slot) in [
            ("tools", &mut next.tools),
            ("tool_choice", &mut next.tool_choice),
            ("max_output_tokens", &mut next.max_output_tokens),
        ] {
            if let Some(value) = session.get(field) {
                *slot = value.clone();
            }
        }
        let audio = session.get("audio").unwrap_or(&Value::Null);
        let input = audio.get("input").unwrap_or(&Value::Null);
        let output = audio.get("output").unwrap_or(&Value::Null);
        if let Some(format) = input.get("format").filter(|f| !f.is_null()) {
            next.input = AudioFormat::parse(format, "session.audio.input.format")?;
        }
        if let Some(format) = output.get("format").filter(|f| !f.is_null()) {
            next.output = AudioFormat::parse(format, "session.audio.output.format")?;
        }
        if let Some(value) = input.get("transcription") {
            next.transcription = value.clone();
        }
        if let Some(value) = input.get("noise_reduction") {
            next.noise_reduction = value.clone();
        }
        if let Some(value) = output.get("speed") {
            next.speed = value.clone();
        }
        if let Some(voice) = output.get("voice").filter(|v| !v.is_null()) {
            let name = voice
                .as_str()
                .or_else(|| voice.get("id").and_then(Value::as_str))
                .filter(|v| !v.is_empty() && v.len() <= 100)
                .ok_or_else(|| {
                    Refusal::new(
                        "session.audio.output.voice",
                        "must be a voice name or {\"id\": …}",
                    )
                })?;
            next.voice = name.to_owned();
            if !OPENAI_VOICES.contains(&name) {
                update.voice = Some(name.to_owned());
            }
        }
        if let Some(td) = input.get("turn_detection") {
            next.turn = turn_mode(td)?;
        }
        if next.input != self.input || next.input.rate() != PCM_RATE {
            update.input_sample_rate = Some(next.input.rate());
        }
        if next.output != self.output || next.output.rate() != PCM_RATE {
            update.output_sample_rate = Some(next.output.rate());
        }
        if next.turn != self.turn {
            // Manual commits: Adam's endpointer waits as long as it can, and the buffer
            // reaches the session only on commit (see `translate.rs`).
            let silence_ms = match &next.turn {
                TurnMode::Vad { silence_ms, .. } => *silence_ms,
                TurnMode::Manual => SILENCE_RANGE.1,
            };
            update.turn_detection = Some(TurnDetectionUpdate {
                silence_duration_ms: Some(silence_ms),
                ..TurnDetectionUpdate::default()
            });
        }
        Ok((next, update))
    }
}

fn server_vad_defaults(silence_ms: u32) -> Value {
    json!({
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": silence_ms,
        "create_response": true,
        "interrupt_response": true,
        "idle_timeout_ms": null,
    })
}

/// The turn detection a `turn_detection` value asks for.
fn turn_mode(td: &Value) -> Result<TurnMode, Refusal> {
    const PARAM: &str = "session.audio.input.turn_detection";
    let Some(object) = td.as_object() else {
        return if td.is_null() {
            Ok(TurnMode::Manual)
        } else {
            Err(Refusal::new(PARAM, "must be an object or null"))
        };
    };
    // Adam answers every finished turn and stops its answer when the caller speaks over
    // it; a client that asks otherwise would be misled by a silent "yes".
    for flag in ["create_response", "interrupt_response"] {
        if object.get(flag).and_then(Value::as_bool) == Some(false) {
            return Err(Refusal::new(
                format!("{PARAM}.{flag}"),
                format!(
                    "{flag}: false is not supported: Adam answers each turn and stops when interrupted"
                ),
            ));
        }
    }
    let number =
        |field: &str| -> Result<Option<f64>, Refusal> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().filter(|n| *n >= 0.0).map(Some).ok_or_else(|| {
                    Refusal::new(format!("{PARAM}.{field}"), "must be a number ≥ 0")
                }),
            }
        };
    match object.get("type").and_then(Value::as_str) {
        Some("server_vad") => {
            let silence = number("silence_duration_ms")?.unwrap_or(500.0);
            if let Some(t) = number("threshold")?
                && t > 1.0
            {
                return Err(Refusal::new(
                    format!("{PARAM}.threshold"),
                    "must be between 0 and 1",
                ));
            }
            let silence_ms = (silence as u32).clamp(SILENCE_RANGE.0, SILENCE_RANGE.1);
            let mut settings = server_vad_defaults(silence_ms);
            for field in ["threshold", "prefix_padding_ms", "idle_timeout_ms"] {
                if let Some(v) = object.get(field) {
                    settings[field] = v.clone();
                }
            }
            Ok(TurnMode::Vad {
                settings,
                silence_ms,
            })
        }
        Some("semantic_vad") => {
            let eagerness = object
                .get("eagerness")
                .and_then(Value::as_str)
                .unwrap_or("auto");
            // Adam's end of turn is its silence timer: the eagerness sets it.
            let silence_ms = match eagerness {
                "low" => 1_500,
                "high" => 400,
                "medium" | "auto" => 800,
                _ => {
                    return Err(Refusal::new(
                        format!("{PARAM}.eagerness"),
                        "must be low, medium, high or auto",
                    ));
                }
            };
            Ok(TurnMode::Vad {
                settings: json!({
                    "type": "semantic_vad",
                    "eagerness": eagerness,
                    "create_response": true,
                    "interrupt_response": true,
                }),
                silence_ms,
            })
        }
        other => Err(Refusal::new(
            format!("{PARAM}.type"),
            format!(
                "unsupported turn detection `{}`: use server_vad, semantic_vad or null",
                other.unwrap_or("")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::new("gpt-realtime".into(), "en-us".into(), 500)
    }

    #[test]
    fn formats_turn_detection_and_instructions_map_onto_adams_update() {
        let (next, update) = base()
            .merge(&json!({
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {
                    "input": {"format": {"type": "audio/pcmu"}, "turn_detection": null},
                    "output": {"format": {"type": "audio/pcma"}, "voice": "alloy"},
                },
                "tools": [{"type": "function", "name": "x"}],
                "truncation": "auto",
            }))
            .expect("accepted");
        assert_eq!(next.input, AudioFormat::Pcmu);
        assert_eq!(next.output, AudioFormat::Pcma);
        assert_eq!(next.turn, TurnMode::Manual);
        assert_eq!(next.voice, "alloy");
        assert_eq!(update.input_sample_rate, Some(8_000));
        assert_eq!(update.output_sample_rate, Some(8_000));
        assert_eq!(update.instructions.as_deref(), Some("Be brief."));
        assert_eq!(update.voice, None, "OpenAI voice names keep Adam's voice");
        assert_eq!(
            update.turn_detection.and_then(|t| t.silence_duration_ms),
            Some(5_000)
        );
        let echoed = next.session_json("sess_1");
        assert_eq!(echoed["audio"]["input"]["turn_detection"], Value::Null);
        assert_eq!(echoed["tools"][0]["name"], "x");

        let (vad, update) = next
            .merge(&json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 20000, "threshold": 0.6}}}}))
            .expect("accepted");
        assert!(
            matches!(&vad.turn, TurnMode::Vad { silence_ms: 5_000, settings } if settings["threshold"] == 0.6)
        );
        assert_eq!(
            update.turn_detection.and_then(|t| t.silence_duration_ms),
            Some(5_000)
        );
    }

    #[test]
    fn what_adam_cannot_do_is_refused_with_the_param() {
        let refused = |session: Value| base().merge(&session).expect_err("refused").param;
        assert_eq!(refused(json!({"type": "transcription"})), "session.type");
        assert_eq!(
            refused(json!({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})),
            "session.audio.input.format.rate"
        );
        assert_eq!(
            refused(json!({"audio": {"output": {"format": {"type": "audio/opus"}}}})),
            "session.audio.output.format.type"
        );
        assert_eq!(
            refused(
                json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": false}}}})
            ),
            "session.audio.input.turn_detection.create_response"
        );
        assert_eq!(
            refused(json!({"instructions": "x".repeat(MAX_INSTRUCTIONS_CHARS + 1)})),
            "session.instructions"
        );
        assert_eq!(
            refused(json!({"output_modalities": ["text", "audio"]})),
            "session.output_modalities"
        );
    }
}
