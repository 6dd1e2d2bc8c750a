//! OpenAI text to speech (`POST {base_url}/audio/speech`, `response_format: pcm`): the
//! body is raw 24 kHz PCM16 LE, streamed as it is synthesized. No word timings (the
//! avatar derives mouth shapes from the letters).

use adam_actors::ports::{
    BoxFuture, CancellationToken, ProviderError, TextToSpeech, TtsChunk, TtsRequest,
};
use futures_util::StreamExt;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::audio::PcmDecoder;
use super::http;
use super::metrics::ProviderMetrics;
use super::resilience::{Emitter, Failure, ProviderGuard, ResilienceConfig, Stage};

/// The rate of OpenAI's `pcm` format.
pub const SAMPLE_RATE: u32 = 24_000;
/// Audio is passed on in pieces of at least this much (the first as soon as it comes).
const CHUNK_MS: usize = 40;
/// OpenAI's voices: a request naming one gets it, others get the configured voice.
const VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
    "shimmer", "verse",
];

/// The voices `tts-1` and `tts-1-hd` have; `ballad`, `verse`, `marin` and `cedar` (and
/// `instructions`) need `gpt-4o-mini-tts` (OpenAI's `createSpeech` reference).
const LEGACY_VOICES: [&str; 9] = [
    "alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
];

/// `[providers.openai.speech]`. The API key comes from
/// [`keys::OPENAI`](super::keys::OPENAI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiTtsConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root.
    pub base_url: String,
    /// `gpt-4o-mini-tts`, `tts-1` or `tts-1-hd`.
    pub model: String,
    /// Voice when the request names none of OpenAI's.
    pub voice: String,
    /// How to speak (`gpt-4o-mini-tts` only); empty for none.
    pub instructions: String,
    /// Speed, 0.25–4.
    pub speed: f32,
    /// Timeouts, retries, breaker.
    pub resilience: ResilienceConfig,
}

impl Default for OpenAiTtsConfig {
    fn default() -> Self {
        Self {
            name: "openai-tts".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini-tts".into(),
            voice: "alloy".into(),
            instructions: String::new(),
            speed: 1.0,
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The OpenAI speech client.
pub struct OpenAiTts {
    config: OpenAiTtsConfig,
    url: Url,
    client: reqwest::Client,
    auth: HeaderValue,
    guard: ProviderGuard,
}

impl std::fmt::Debug for OpenAiTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiTts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiTtsConfig {
    /// `tts-1` or `tts-1-hd` (or a dated version of them): older models without the newer
    /// voices and without `instructions`.
    pub fn is_legacy_model(&self) -> bool {
        let model = self.model.trim().to_ascii_lowercase();
        model == "tts-1" || model.starts_with("tts-1-")
    }

    /// A setting the model cannot take, as (field, problem): OpenAI refuses such requests
    /// with a 400, so every sentence would fall back.
    pub fn unsupported(&self) -> Option<(&'static str, String)> {
        if !self.is_legacy_model() {
            return None;
        }
        let voice = self.voice.trim().to_ascii_lowercase();
        if !LEGACY_VOICES.contains(&voice.as_str()) {
            return Some((
                "voice",
                format!(
                    "`{}` is not a voice of {} (it has {}); use gpt-4o-mini-tts for it",
                    self.voice,
                    self.model,
                    LEGACY_VOICES.join(", ")
                ),
            ));
        }
        if !self.instructions.trim().is_empty() {
            return Some((
                "instructions",
                format!(
                    "{} does not take instructions; leave them empty or use gpt-4o-mini-tts",
                    self.model
                ),
            ));
        }
        None
    }
}

impl OpenAiTts {
    /// A client for `config` authenticating with `api_key`; refuses a voice or
    /// instructions its model does not support.
    pub fn new(
        config: OpenAiTtsConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        if let Some((field, problem)) = config.unsupported() {
            return Err(ProviderError::Rejected(format!(
                "openai speech {field}: {problem}"
            )));
        }
        Ok(Self {
            url: http::endpoint(&config.base_url, "audio/speech")?,
            client: http::client(&config.resilience)?,
            auth: http::secret_header("Bearer ", &api_key)?,
            guard: ProviderGuard::new(&config.name, Stage::Tts, config.resilience.clone(), metrics),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    async fn run(
        &self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> Result<(), ProviderError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let requested = request.voice.trim().to_ascii_lowercase();
        let voices: &[&str] = if self.config.is_legacy_model() {
            &LEGACY_VOICES
        } else {
            &VOICES
        };
        let voice = if voices.contains(&requested.as_str()) {
            requested
        } else {
            self.config.voice.clone()
        };
        let mut body = json!({
            "model": self.config.model,
            "input": text,
            "voice": voice,
            "response_format": "pcm",
            "speed": self.config.speed,
        });
        if !self.config.instructions.is_empty() {
            body["instructions"] = json!(self.config.instructions);
        }
        self.guard
            .stream(&out, &cancel, |emit| self.attempt(&body, emit))
            .await
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        emit: Emitter<TtsChunk>,
    ) -> Result<(), Failure> {
        let provider = self.guard.provider();
        let response = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let response = http::check(provider, response).await?;
        let mut stream = response.bytes_stream().boxed();
        let idle = self.config.resilience.idle_timeout();
        let min_chunk = SAMPLE_RATE as usize * CHUNK_MS / 1000;
        let mut decoder = PcmDecoder::default();
        let mut pending: Vec<i16> = Vec::new();
        let mut first = true;
        while let Some(bytes) = http::next_chunk(provider, &mut stream, idle).await? {
            pending.extend(decoder.push(&bytes));
            if !pending.is_empty() && (first || pending.len() >= min_chunk) {
                first = false;
                emit.send(chunk(std::mem::take(&mut pending))).await?;
            }
        }
        if !pending.is_empty() {
            emit.send(chunk(pending)).await?;
        }
        Ok(())
    }
}

fn chunk(samples: Vec<i16>) -> TtsChunk {
    TtsChunk {
        samples,
        sample_rate: SAMPLE_RATE,
        words: Vec::new(),
    }
}

impl TextToSpeech for OpenAiTts {
    fn synthesize<'a>(
        &'a self,
        request: TtsRequest,
        out: mpsc::Sender<TtsChunk>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.run(request, out, cancel))
    }
}
