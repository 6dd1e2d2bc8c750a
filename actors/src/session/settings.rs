//! Per-session settings: their defaults and the `session.update` that changes them.

use std::time::Duration;

use super::SessionState;
use crate::events::{MAX_INSTRUCTIONS_CHARS, SessionUpdate, TurnDetection};
use crate::ports::{AvatarSettings, Vocabulary};
use crate::stt_stream::SttMsg;
use crate::tts_stream::TtsMsg;

/// Per-session settings (defaults from config, changed by `session.update`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Input PCM rate.
    pub input_sample_rate: u32,
    /// Output PCM rate.
    pub output_sample_rate: u32,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: String,
    /// End of turn detection.
    pub turn_detection: TurnDetection,
    /// Persona / system prompt.
    pub persona: String,
    /// The client's own instructions (`session.update`), appended to the persona.
    pub instructions: String,
    /// The dealership's IANA time zone ("" = UTC): its "today" and "tomorrow".
    pub timezone: String,
    /// The dealership's avatar (a remote one is started with the session).
    pub avatar: AvatarSettings,
    /// Turns kept as context.
    pub history_turns: usize,
    /// Child restarts allowed per window before the session closes.
    pub restart_limit: usize,
    /// The window.
    pub restart_window: Duration,
    /// Deadline for one transcription.
    pub stt_timeout: Duration,
    /// Silence after which transcription starts before the turn is over (0: off).
    pub early_transcription_ms: u32,
    /// Deadline for a whole answer.
    pub answer_timeout: Duration,
    /// Passages retrieved per question.
    pub retrieval_top_k: usize,
    /// The transport fixes the sample rates (WebRTC: Opus at 48 kHz); `session.update`
    /// may not change them.
    pub fixed_sample_rates: bool,
    /// Longest conversation (`None`: no limit): then the answer in progress finishes and
    /// the session closes with `session_limit` (1008).
    pub max_duration: Option<Duration>,
    /// Answers that may start per minute (0: no limit). More get `rate_limited` error
    /// events; twice as many close the session (1008).
    pub turns_per_minute: u32,
    /// Characters of each side of a turn kept in the transcript (0: all).
    pub max_stored_chars: usize,
    /// Say this, then close with `usage_cap_reached` (1013): the dealership reached a
    /// usage cap after this session was granted.
    pub closing_notice: Option<String>,
    /// The dealership's words, so the recognizer hears its model and staff names.
    pub vocabulary: Vocabulary,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            input_sample_rate: 16_000,
            output_sample_rate: 24_000,
            voice: "default".into(),
            turn_detection: TurnDetection {
                silence_duration_ms: 500,
                min_speech_ms: 200,
                max_turn_ms: 30_000,
            },
            persona: String::new(),
            instructions: String::new(),
            timezone: String::new(),
            avatar: AvatarSettings::default(),
            history_turns: 6,
            restart_limit: 3,
            restart_window: Duration::from_secs(10),
            stt_timeout: Duration::from_secs(15),
            early_transcription_ms: 0,
            answer_timeout: Duration::from_secs(30),
            retrieval_top_k: 4,
            fixed_sample_rates: false,
            max_duration: None,
            turns_per_minute: 0,
            max_stored_chars: 0,
            closing_notice: None,
            vocabulary: Vocabulary::default(),
        }
    }
}

impl SessionSettings {
    /// The system prompt of an answer: the persona, then the client's instructions.
    pub fn prompt(&self) -> String {
        if self.instructions.is_empty() {
            self.persona.clone()
        } else {
            format!("{}\n\n{}", self.persona, self.instructions)
        }
    }
}

impl SessionState {
    pub(super) fn apply_update(&mut self, update: SessionUpdate) -> Result<(), String> {
        let rate_ok = |r: u32| (8_000..=48_000).contains(&r);
        if let Some(r) = update.input_sample_rate.filter(|r| !rate_ok(*r)) {
            return Err(format!("input_sample_rate {r} is outside 8000–48000"));
        }
        if let Some(r) = update.output_sample_rate.filter(|r| !rate_ok(*r)) {
            return Err(format!("output_sample_rate {r} is outside 8000–48000"));
        }
        let changes_rate = update
            .input_sample_rate
            .is_some_and(|r| r != self.settings.input_sample_rate)
            || update
                .output_sample_rate
                .is_some_and(|r| r != self.settings.output_sample_rate);
        if self.settings.fixed_sample_rates && changes_rate {
            return Err(
                "this transport fixes the sample rates (WebRTC carries Opus at 48000 Hz)".into(),
            );
        }
        if let Some(v) = &update.voice
            && (v.is_empty() || v.len() > 100)
        {
            return Err("voice must be 1 to 100 characters".into());
        }
        if let Some(i) = &update.instructions
            && i.chars().count() > MAX_INSTRUCTIONS_CHARS
        {
            return Err(format!(
                "instructions must be at most {MAX_INSTRUCTIONS_CHARS} characters"
            ));
        }
        let mut td = self.settings.turn_detection.clone();
        if let Some(t) = update.turn_detection {
            td.silence_duration_ms = t.silence_duration_ms.unwrap_or(td.silence_duration_ms);
            td.min_speech_ms = t.min_speech_ms.unwrap_or(td.min_speech_ms);
            td.max_turn_ms = t.max_turn_ms.unwrap_or(td.max_turn_ms);
        }
        if !(100..=5_000).contains(&td.silence_duration_ms)
            || td.min_speech_ms > 2_000
            || !(1_000..=120_000).contains(&td.max_turn_ms)
        {
            return Err("turn_detection out of range (silence 100–5000, min_speech ≤ 2000, max_turn 1000–120000 ms)".into());
        }
        self.settings.turn_detection = td;
        if let Some(r) = update.input_sample_rate {
            self.settings.input_sample_rate = r;
        }
        if let Some(r) = update.output_sample_rate {
            self.settings.output_sample_rate = r;
        }
        if let Some(v) = update.voice {
            self.settings.voice = v;
        }
        if let Some(i) = update.instructions {
            self.settings.instructions = i.trim().to_owned();
        }
        let _ = self.stt.cast(SttMsg::Configure {
            sample_rate: self.settings.input_sample_rate,
            turn_detection: self.settings.turn_detection.clone(),
        });
        let _ = self.tts.cast(TtsMsg::Configure {
            output_sample_rate: self.settings.output_sample_rate,
            voice: self.settings.voice.clone(),
        });
        Ok(())
    }
}
