//! Transcription of one utterance by OpenAI (`POST {base_url}/audio/transcriptions`):
//! the PCM16 turn is uploaded as a WAV file in a multipart form, with
//! `response_format=json`; the reply is `{"text": "…"}`.

use adam_actors::ports::{BoxFuture, CancellationToken, ProviderError, SpeechToText, SttRequest};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::multipart::{Form, Part};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::audio::wav;
use super::http;
use super::metrics::ProviderMetrics;

/// Longest vocabulary prompt sent, characters.
const PROMPT_CHARS: usize = 300;
use super::resilience::{Failure, ProviderGuard, ResilienceConfig, Stage};

/// `[providers.openai.transcription]`. The API key comes from
/// [`keys::OPENAI`](super::keys::OPENAI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscriptionConfig {
    /// The `provider` label; unique per client.
    pub name: String,
    /// API root.
    pub base_url: String,
    /// `gpt-4o-mini-transcribe`, `gpt-4o-transcribe` or `whisper-1`.
    pub model: String,
    /// ISO-639-1 language of the speech (`en`); empty lets the model detect it.
    pub language: String,
    /// Vocabulary hint (dealership and model names).
    pub prompt: String,
    /// Timeouts, retries, breaker (the first-byte timeout bounds each upload).
    pub resilience: ResilienceConfig,
}

impl Default for TranscriptionConfig {
    fn default() -> Self {
        Self {
            name: "openai-stt".into(),
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini-transcribe".into(),
            language: "en".into(),
            prompt: String::new(),
            resilience: ResilienceConfig::default(),
        }
    }
}

/// The transcription client.
pub struct OpenAiTranscriber {
    config: TranscriptionConfig,
    url: Url,
    client: reqwest::Client,
    auth: HeaderValue,
    guard: ProviderGuard,
}

impl std::fmt::Debug for OpenAiTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiTranscriber")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Transcript {
    text: String,
}

impl OpenAiTranscriber {
    /// A client for `config` authenticating with `api_key`.
    pub fn new(
        config: TranscriptionConfig,
        api_key: SecretString,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            url: http::endpoint(&config.base_url, "audio/transcriptions")?,
            client: http::client(&config.resilience)?,
            auth: http::secret_header("Bearer ", &api_key)?,
            guard: ProviderGuard::new(&config.name, Stage::Stt, config.resilience.clone(), metrics),
            config,
        })
    }

    /// The guard (breaker state, for health checks).
    pub fn guard(&self) -> &ProviderGuard {
        &self.guard
    }

    async fn run(
        &self,
        request: SttRequest,
        cancel: CancellationToken,
    ) -> Result<String, ProviderError> {
        if request.audio.is_empty() {
            return Ok(String::new());
        }
        let file = bytes::Bytes::from(wav(&request.audio, request.sample_rate));
        // The configured hint, then the dealership's words (the API reads at most 224
        // tokens of prompt).
        let prompt = [
            self.config.prompt.trim().to_owned(),
            request.vocabulary.prompt(PROMPT_CHARS),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        self.guard
            .unary(&cancel, || self.attempt(file.clone(), &prompt))
            .await
    }

    async fn attempt(&self, file: bytes::Bytes, prompt: &str) -> Result<String, Failure> {
        let provider = self.guard.provider();
        let part = Part::stream_with_length(reqwest::Body::from(file.clone()), file.len() as u64)
            .file_name("turn.wav")
            .mime_str("audio/wav")
            .map_err(|e| http::transport(provider, &e))?;
        let mut form = Form::new()
            .part("file", part)
            .text("model", self.config.model.clone())
            .text("response_format", "json");
        if !self.config.language.is_empty() {
            form = form.text("language", self.config.language.clone());
        }
        if !prompt.is_empty() {
            form = form.text("prompt", prompt.to_owned());
        }
        let response = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .multipart(form)
            .send()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let response = http::check(provider, response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::transport(provider, &e))?;
        let transcript: Transcript = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::from(ProviderError::Unavailable(format!(
                "{provider}: malformed transcription response ({e})"
            )))
        })?;
        Ok(transcript.text.trim().to_owned())
    }
}

impl SpeechToText for OpenAiTranscriber {
    fn transcribe<'a>(
        &'a self,
        request: SttRequest,
        _partial: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.run(request, cancel))
    }
}
