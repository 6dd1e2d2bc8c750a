//! The cloud providers chosen in `[providers]`: each stage's chain (`stt`, `answer`,
//! `tts`) is built from the profile's own provider and the configured cloud clients, in
//! order, falling back only while nothing was produced; `embeddings` picks one embedder;
//! the avatar backend starts the remote avatar (HeyGen) a dealership chose. A chain (or
//! `avatar = "heygen"`) that names a service without its API key stops startup with the
//! variable's name.

use std::sync::Arc;

use adam_actors::ports::{
    AnswerEngine, AvatarBackend, AvatarSettings, BoxFuture, CancellationToken, Embedder,
    ProviderError, Providers, RemoteAvatar, SpeechToText, TextToSpeech,
};
use adam_providers::cloud::chat::ChatCompletions;
use adam_providers::cloud::deepgram::DeepgramStt;
use adam_providers::cloud::elevenlabs::ElevenLabsTts;
use adam_providers::cloud::embeddings::OpenAiEmbedder;
use adam_providers::cloud::fallback::{FallbackAnswer, FallbackStt, FallbackTts};
use adam_providers::cloud::heygen::HeyGen;
use adam_providers::cloud::keys;
use adam_providers::cloud::metrics::ProviderMetrics;
use adam_providers::cloud::openai_stt::OpenAiTranscriber;
use adam_providers::cloud::openai_tts::OpenAiTts;
use anyhow::{Context, anyhow};
use secrecy::SecretString;

use crate::settings::ProviderSettings;

/// `providers` (the profile's set) with every configured chain in place, and the id of the
/// embedder documents are indexed with.
pub fn assemble(
    mut providers: Providers,
    settings: &ProviderSettings,
    registry: &prometheus::Registry,
) -> anyhow::Result<(Providers, String)> {
    let k = &settings.keys;
    let uses_heygen = settings.avatar == "heygen" || k.heygen.is_some();
    let uses_cloud = [&settings.stt, &settings.answer, &settings.tts]
        .iter()
        .any(|chain| chain.iter().any(|name| name != "profile"))
        || settings.embeddings == "openai"
        || uses_heygen;
    let mut embedder_id = format!("{}:{}", settings.profile, providers.embedder.dimension());
    if !uses_cloud {
        providers.avatar = Arc::new(AvatarChoice::builtin(providers.avatar));
        return Ok((providers, embedder_id));
    }
    let metrics = ProviderMetrics::register(registry).context("registering provider metrics")?;
    let key = |key: &Option<SecretString>, var: &str, stage: &str| {
        key.clone().ok_or_else(|| {
            anyhow!("providers.{stage} uses a service whose key is not set: set {var}")
        })
    };
    let mut avatars = AvatarChoice::builtin(providers.avatar.clone());
    if uses_heygen {
        avatars.heygen = Some(Arc::new(HeyGen::new(
            settings.heygen.clone(),
            key(&k.heygen, keys::HEYGEN, "avatar")?,
            metrics.clone(),
        )?));
    }
    providers.avatar = Arc::new(avatars);
    if !settings.stt.is_empty() {
        let mut chain: Vec<Arc<dyn SpeechToText>> = Vec::new();
        for name in &settings.stt {
            chain.push(match name.as_str() {
                "openai" => Arc::new(OpenAiTranscriber::new(
                    settings.openai.transcription.clone(),
                    key(&k.openai, keys::OPENAI, "stt")?,
                    metrics.clone(),
                )?),
                "deepgram" => {
                    let deepgram = Arc::new(DeepgramStt::new(
                        settings.deepgram.clone(),
                        key(&k.deepgram, keys::DEEPGRAM, "stt")?,
                        metrics.clone(),
                    )?);
                    // Deepgram decides where turns end only as the first choice: a
                    // fallback's turns end on the local VAD like the rest.
                    if settings.deepgram.end_of_turn && chain.is_empty() {
                        providers.listening = Some(deepgram.clone());
                    }
                    deepgram
                }
                _ => providers.stt.clone(),
            });
        }
        providers.stt = Arc::new(FallbackStt(chain));
    }
    if !settings.answer.is_empty() {
        let mut chain: Vec<Arc<dyn AnswerEngine>> = Vec::new();
        for name in &settings.answer {
            chain.push(match name.as_str() {
                "openrouter" => Arc::new(ChatCompletions::new(
                    settings.openrouter.clone(),
                    k.openrouter.clone(),
                    metrics.clone(),
                )?),
                "openai" => Arc::new(ChatCompletions::new(
                    settings.openai.chat.clone(),
                    Some(key(&k.openai, keys::OPENAI, "answer")?),
                    metrics.clone(),
                )?),
                _ => providers.answer.clone(),
            });
        }
        providers.answer = Arc::new(FallbackAnswer(chain));
    }
    if !settings.tts.is_empty() {
        let mut chain: Vec<Arc<dyn TextToSpeech>> = Vec::new();
        for name in &settings.tts {
            chain.push(match name.as_str() {
                "elevenlabs" => Arc::new(ElevenLabsTts::new(
                    settings.elevenlabs.clone(),
                    key(&k.elevenlabs, keys::ELEVENLABS, "tts")?,
                    metrics.clone(),
                )?),
                "openai" => Arc::new(OpenAiTts::new(
                    settings.openai.speech.clone(),
                    key(&k.openai, keys::OPENAI, "tts")?,
                    metrics.clone(),
                )?),
                _ => providers.tts.clone(),
            });
        }
        providers.tts = Arc::new(FallbackTts(chain));
    }
    if settings.embeddings == "openai" {
        let config = settings.openai.embeddings.clone();
        embedder_id = format!("openai:{}:{}", config.model, config.dimension);
        let embedder: Arc<dyn Embedder> =
            Arc::new(OpenAiEmbedder::new(config, k.openai.clone(), metrics)?);
        providers.embedder = embedder;
    }
    Ok((providers, embedder_id))
}

/// Starts the avatar a dealership chose: `heygen` with the HeyGen client when this node
/// has one (an error otherwise: the session goes on with the built-in avatar); anything
/// else is the built-in avatar, which starts nothing remote.
struct AvatarChoice {
    builtin: Arc<dyn AvatarBackend>,
    heygen: Option<Arc<HeyGen>>,
}

impl AvatarChoice {
    fn builtin(builtin: Arc<dyn AvatarBackend>) -> Self {
        Self {
            builtin,
            heygen: None,
        }
    }
}

impl AvatarBackend for AvatarChoice {
    fn start<'a>(
        &'a self,
        session_id: &'a str,
        settings: &'a AvatarSettings,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Option<Box<dyn RemoteAvatar>>, ProviderError>> {
        match (settings.provider.as_str(), &self.heygen) {
            ("heygen", Some(heygen)) => heygen.start(session_id, settings, cancel),
            ("heygen", None) => Box::pin(async {
                Err(ProviderError::Unavailable(format!(
                    "heygen is not configured on this server: set {}",
                    keys::HEYGEN
                )))
            }),
            _ => self.builtin.start(session_id, settings, cancel),
        }
    }
}
