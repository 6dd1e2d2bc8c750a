//! ElevenLabs text to speech over the `stream-input` WebSocket
//! (`wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input`, header
//! `xi-api-key`), raw PCM out, one connection per sentence.
//!
//! Sent: `{"text": " ", "voice_settings": {…}}` to open, the sentence with
//! `"flush": true`, then `{"text": ""}` to close. Received: `{"audio": base64 PCM16,
//! "alignment": {"chars", "charStartTimesMs", "charsDurationsMs"}}` (times relative to
//! that message's audio) until `{"isFinal": true}`; errors come as `{"message",
//! "error"}` or a close frame. Word timings are built from the character alignment.
//!
//! A socket that goes quiet while audio is owed fails after `idle_timeout_ms` with
//! `ProviderError::Timeout` instead of hanging until the vendor's own 20 s (or a load
//! balancer's minute) runs out.

use adam_actors::ports::{
    BoxFuture, CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest, WordTiming,
};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::audio::PcmDecoder;
use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Emitter, Failure, ProviderGuard, ResilienceConfig, Stage};
use super::ws;

/// Output rates ElevenLabs streams as raw PCM.
const PCM_RATES: [u32; 4] = [16_000, 22_050, 24_000, 44_100];

/// `[providers.elevenlabs]`. The API key comes from
/// [`keys::ELEVENLABS`](super::keys::ELEVENLABS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root (`wss://api.elevenlabs.io`).
    pub base_url: String,
    /// Voice used when a request names none of ElevenLabs' voice ids.
    pub voice_id: String,
    /// Model (`eleven_flash_v2_5`: lowest latency).
    pub model_id: String,
    /// Output rate: 16000, 22050, 24000 or 44100 (`pcm_<rate>`).
    pub sample_rate: u32,
    /// Voice stability, 0–1.
    pub stability: f32,
    /// Similarity boost, 0–1.
    pub similarity_boost: f32,
    /// Speaking speed, 0.7–1.2.
    pub speed: f32,
    /// `auto_mode`: generate as soon as a whole sentence is in (Adam sends whole
    /// sentences), lowest latency.
    pub auto_mode: bool,
    /// Timeouts, retries, breaker; `idle_timeout_ms` is the dead-socket limit.
    pub resilience: ResilienceConfig,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        Self {
            name: "elevenlabs".into(),
            base_url: "wss://api.elevenlabs.io".into(),
            // "Rachel", one of the default voices.
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            model_id: "eleven_flash_v2_5".into(),
            sample_rate: 24_000,
            stability: 0.5,
            similarity_boost: 0.75,
            speed: 1.0,
            auto_mode: true,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The ElevenLabs client.
pub struct ElevenLabsTts {
    config: ElevenLabsConfig,
    key: HeaderValue,
    guard: ProviderGuard,
}

impl std::fmt::Debug for ElevenLabsTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsTts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
struct ServerMessage {
    audio: Option<String>,
    #[serde(rename = "isFinal")]
    is_final: Option<bool>,
    alignment: Option<Alignment>,
    message: Option<String>,
    error: Option<String>,
}

/// Character timings of one audio message.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Alignment {
    /// The characters.
    #[serde(default)]
    pub chars: Vec<String>,
    /// Their start times, ms from the start of the message's audio.
    #[serde(default, rename = "charStartTimesMs", alias = "charsStartTimesMs")]
    pub starts: Vec<f64>,
    /// Their durations, ms.
    #[serde(default, rename = "charsDurationsMs", alias = "charDurationsMs")]
    pub durations: Vec<f64>,
}

impl ElevenLabsTts {
    /// A client for `config` authenticating with `api_key`.
    pub fn new(
        config: ElevenLabsConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        if !PCM_RATES.contains(&config.sample_rate) {
            return Err(ProviderError::Rejected(format!(
                "elevenlabs.sample_rate {} is not one of 16000, 22050, 24000, 44100",
                config.sample_rate
            )));
        }
        let this = Self {
            key: http::secret_header("", &api_key)?,
            guard: ProviderGuard::new(&config.name, Stage::Tts, config.resilience.clone(), metrics),
            config,
        };
        this.url(&this.config.voice_id)?;
        Ok(this)
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    /// The voice for a request: its own when it names an ElevenLabs voice id (20
    /// letters and digits), else the configured one.
    fn voice_for<'a>(&'a self, requested: &'a str) -> &'a str {
        let requested = requested.trim();
        if requested.len() == 20 && requested.chars().all(|c| c.is_ascii_alphanumeric()) {
            requested
        } else {
            &self.config.voice_id
        }
    }

    fn url(&self, voice: &str) -> Result<Url, ProviderError> {
        let base = self.config.base_url.trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/v1/text-to-speech/{voice}/stream-input"))
            .map_err(|e| ProviderError::Rejected(format!("bad ElevenLabs URL `{base}`: {e}")))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(ProviderError::Rejected(format!(
                "ElevenLabs URL `{base}` must be ws:// or wss://"
            )));
        }
        url.query_pairs_mut()
            .append_pair("model_id", &self.config.model_id)
            .append_pair("output_format", &format!("pcm_{}", self.config.sample_rate))
            .append_pair("sync_alignment", "true")
            .append_pair(
                "auto_mode",
                if self.config.auto_mode {
                    "true"
                } else {
                    "false"
                },
            );
        Ok(url)
    }

    async fn run(
        &self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> Result<(), ProviderError> {
        let text = request
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            return Ok(());
        }
        let url = self.url(self.voice_for(&request.voice))?;
        self.guard
            .stream(&out, &cancel, |emit| self.attempt(&url, &text, emit))
            .await
    }

    async fn attempt(&self, url: &Url, text: &str, emit: Emitter<TtsChunk>) -> Result<(), Failure> {
        let provider = self.guard.provider();
        let resilience = &self.config.resilience;
        let mut socket = ws::connect(
            provider,
            url.as_str(),
            Some(("xi-api-key", self.key.clone())),
            resilience.connect_timeout(),
        )
        .await?;
        let open = json!({
            "text": " ",
            "voice_settings": {
                "stability": self.config.stability,
                "similarity_boost": self.config.similarity_boost,
                "speed": self.config.speed,
            },
        });
        // The text must end with a space; `flush` makes it speak now.
        let sentence = json!({ "text": format!("{text} "), "flush": true });
        for message in [open, sentence, json!({ "text": "" })] {
            socket
                .send(Message::text(message.to_string()))
                .await
                .map_err(|e| ws::socket_failure(provider, &e))?;
        }
        let rate = self.config.sample_rate;
        let mut decoder = PcmDecoder::default();
        let mut words = WordAligner::default();
        let mut samples_sent: u64 = 0;
        loop {
            let message = match tokio::time::timeout(resilience.idle_timeout(), socket.next()).await
            {
                Err(_) => {
                    tracing::warn!(
                        provider,
                        idle_ms = resilience.idle_timeout_ms,
                        "ElevenLabs socket went quiet while audio was owed"
                    );
                    return Err(Failure::from(ProviderError::Timeout));
                }
                Ok(None) => return Err(ws::close_failure(provider, None)),
                Ok(Some(Err(e))) => return Err(ws::socket_failure(provider, &e)),
                Ok(Some(Ok(message))) => message,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => return Err(ws::close_failure(provider, frame.as_ref())),
                _ => continue,
            };
            let parsed: ServerMessage = serde_json::from_str(&text).map_err(|e| {
                Failure::from(ProviderError::Unavailable(format!(
                    "{provider}: malformed message ({e})"
                )))
            })?;
            if let Some(failure) = server_error(provider, &parsed) {
                return Err(failure);
            }
            if let Some(audio) = parsed.audio.as_deref().filter(|a| !a.is_empty()) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(audio)
                    .map_err(|e| {
                        Failure::from(ProviderError::Unavailable(format!(
                            "{provider}: audio is not base64 ({e})"
                        )))
                    })?;
                let offset_ms = samples_sent as f64 * 1000.0 / f64::from(rate);
                let samples = decoder.push(&bytes);
                let audio_ms = samples.len() as f64 * 1000.0 / f64::from(rate);
                // Some messages carry audio and no alignment: their audio still moves
                // the clock the next message's alignment starts from.
                let done = parsed
                    .alignment
                    .as_ref()
                    .map(|a| words.feed(a, offset_ms, audio_ms))
                    .unwrap_or_default();
                samples_sent += samples.len() as u64;
                emit.send(TtsChunk {
                    samples,
                    sample_rate: rate,
                    words: done,
                })
                .await?;
            }
            if parsed.is_final == Some(true) {
                if let Some(last) = words.finish() {
                    emit.send(TtsChunk {
                        samples: Vec::new(),
                        sample_rate: rate,
                        words: vec![last],
                    })
                    .await?;
                }
                return Ok(());
            }
        }
    }
}

/// An error message from ElevenLabs, classified: a bad key, voice, text or quota is a
/// rejected request; a rate or concurrency limit is rate limiting; the rest is
/// unavailable.
fn server_error(provider: &str, message: &ServerMessage) -> Option<Failure> {
    let kind = message.error.as_deref();
    let text = message.message.as_deref();
    if kind.is_none() && (text.is_none() || message.audio.is_some()) {
        return None;
    }
    let kind = kind.unwrap_or_default();
    let description = format!("{provider}: {}", text.unwrap_or(kind));
    let lower = format!("{kind} {}", text.unwrap_or_default()).to_ascii_lowercase();
    let limited = ["rate_limit", "rate limit", "too_many", "concurren"];
    Some(if limited.iter().any(|k| lower.contains(k)) {
        Failure::rate_limited(description, None)
    } else if [
        "quota",
        "api_key",
        "unauthor",
        "invalid",
        "not_found",
        "voice",
        "payment",
    ]
    .iter()
    .any(|k| lower.contains(k))
    {
        Failure::from(ProviderError::Rejected(description))
    } else {
        Failure::from(ProviderError::Unavailable(description))
    })
}

impl TextToSpeech for ElevenLabsTts {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.run(request, out, cancel))
    }
}

/// Builds word timings from character alignments arriving message by message (a word
/// may span two messages). Sans-IO.
#[derive(Debug, Default)]
pub struct WordAligner {
    current: Option<(String, f64, f64)>,
}

impl WordAligner {
    /// Feeds one message's alignment, whose `audio_ms` of audio start `offset_ms` into
    /// the sentence; returns the words it completed. ElevenLabs' character durations do
    /// not always add up to the message's audio: an alignment that runs past its audio is
    /// compressed onto it (so the mouth never moves after the sound), one that ends early
    /// is kept (the rest is the pause after the last character).
    pub fn feed(
        &mut self,
        alignment: &Alignment,
        offset_ms: f64,
        audio_ms: f64,
    ) -> Vec<WordTiming> {
        let span = alignment
            .starts
            .iter()
            .zip(&alignment.durations)
            .map(|(s, d)| s.max(0.0) + d.max(0.0))
            .fold(0.0_f64, f64::max);
        let scale = if audio_ms > 0.0 && span > audio_ms {
            audio_ms / span
        } else {
            1.0
        };
        let mut done = Vec::new();
        let timed = alignment
            .chars
            .iter()
            .zip(&alignment.starts)
            .zip(&alignment.durations);
        for ((c, start), duration) in timed {
            if c.chars().all(char::is_whitespace) {
                done.extend(self.take());
                continue;
            }
            let start = offset_ms + start.max(0.0) * scale;
            let end = start + duration.max(0.0) * scale;
            match &mut self.current {
                Some((word, _, word_end)) => {
                    word.push_str(c);
                    *word_end = end;
                }
                None => self.current = Some((c.clone(), start, end)),
            }
        }
        done
    }

    /// The sentence ended: the word still open.
    pub fn finish(&mut self) -> Option<WordTiming> {
        self.take()
    }

    fn take(&mut self) -> Option<WordTiming> {
        let (raw, start, end) = self.current.take()?;
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        (!word.is_empty()).then(|| WordTiming {
            word: word.to_owned(),
            start_ms: start.round() as u32,
            end_ms: end.round() as u32,
            visemes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alignment(text: &str, start: f64, step: f64) -> Alignment {
        let chars: Vec<String> = text.chars().map(String::from).collect();
        Alignment {
            starts: (0..chars.len()).map(|i| start + i as f64 * step).collect(),
            durations: vec![step; chars.len()],
            chars,
        }
    }

    #[test]
    fn words_are_built_across_messages_on_the_sentence_clock() {
        let mut w = WordAligner::default();
        // "Hi, the" in the first message (0–70 ms), "re." in the second, whose audio
        // starts 500 ms into the sentence.
        let first = w.feed(&alignment("Hi, the", 0.0, 10.0), 0.0, 500.0);
        assert_eq!(
            first,
            [WordTiming {
                word: "Hi".into(),
                start_ms: 0,
                end_ms: 30,
                visemes: vec![]
            }]
        );
        assert!(w.feed(&alignment("re.", 0.0, 10.0), 500.0, 30.0).is_empty());
        let last = w.finish().expect("last word");
        assert_eq!(
            (last.word.as_str(), last.start_ms, last.end_ms),
            ("there", 40, 530)
        );
        assert_eq!(w.finish(), None);
    }

    #[test]
    fn an_alignment_longer_than_its_audio_is_compressed_onto_it() {
        let mut w = WordAligner::default();
        // 100 ms of alignment over 50 ms of audio; one shorter than its audio is kept.
        assert!(w.feed(&alignment("ab", 0.0, 50.0), 0.0, 50.0).is_empty());
        let word = w.finish().expect("a word");
        assert_eq!((word.start_ms, word.end_ms), (0, 50));
        w.feed(&alignment("cd", 0.0, 10.0), 100.0, 50.0);
        let word = w.finish().expect("a word");
        assert_eq!((word.start_ms, word.end_ms), (100, 120));
    }

    #[test]
    fn both_spellings_of_the_duration_field_are_read() {
        let a: Alignment = serde_json::from_str(
            r#"{"chars":["a"],"charStartTimesMs":[5],"charsDurationsMs":[7]}"#,
        )
        .expect("a");
        let b: Alignment =
            serde_json::from_str(r#"{"chars":["a"],"charStartTimesMs":[5],"charDurationsMs":[7]}"#)
                .expect("b");
        assert_eq!(a, b);
        assert_eq!(a.durations, [7.0]);
    }

    #[test]
    fn errors_are_classified() {
        let msg = |error: &str, message: &str| ServerMessage {
            error: Some(error.into()),
            message: Some(message.into()),
            ..ServerMessage::default()
        };
        assert!(matches!(
            server_error(
                "e",
                &msg("quota_exceeded", "This request exceeds your quota.")
            )
            .map(|f| f.error),
            Some(ProviderError::Rejected(_))
        ));
        assert!(
            server_error("e", &msg("too_many_concurrent_requests", "busy"))
                .is_some_and(|f| f.rate_limited)
        );
        assert!(matches!(
            server_error("e", &msg("internal", "Something went wrong")).map(|f| f.error),
            Some(ProviderError::Unavailable(_))
        ));
        assert!(server_error("e", &ServerMessage::default()).is_none());
    }
}
