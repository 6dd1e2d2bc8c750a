//! [`assemble`]: the profile's providers with every configured chain in place. Each
//! stage's chain (`stt`, `answer`, `tts`) is built in order, falling back only while
//! nothing was produced; `embeddings` picks one embedder; the avatar backend starts the
//! remote avatar (HeyGen) a dealership chose. A chain (or `avatar = "heygen"`) that names
//! a service without its API key is an error naming the variable.

use std::sync::Arc;

use adam_actors::ports::{
    AnswerEngine, AvatarBackend, AvatarSettings, BoxFuture, CancellationToken, Embedder,
    ProviderError, Providers, RemoteAvatar, SpeechToText, TextToSpeech,
};

use super::{
    Account, AnswerVendor, AvatarVendor, EmbeddingsVendor, Profile, ProviderSettings, SttVendor,
    TtsVendor,
};
use crate::cloud::chat::ChatCompletions;
use crate::cloud::deepgram::DeepgramStt;
use crate::cloud::elevenlabs::ElevenLabsTts;
use crate::cloud::embeddings::OpenAiEmbedder;
use crate::cloud::fallback::{FallbackAnswer, FallbackStt, FallbackTts};
use crate::cloud::heygen::HeyGen;
use crate::cloud::metrics::ProviderMetrics;
use crate::cloud::openai_stt::OpenAiTranscriber;
use crate::cloud::openai_tts::OpenAiTts;
use crate::embedded::Embedded;

/// The node's providers, as [`assemble`] built them.
pub struct Assembled {
    /// Every stage's provider (chains where configured).
    pub providers: Providers,
    /// The embedded models, when that profile runs (admission control reads their pools).
    pub embedded: Option<Arc<Embedded>>,
    /// Names the embedder documents are indexed with (a change re-indexes them).
    pub embedder_id: String,
}

/// Starts the profile's providers, then builds every configured chain around them.
pub async fn assemble(
    settings: &ProviderSettings,
    registry: &prometheus::Registry,
) -> Result<Assembled, String> {
    let (mut providers, embedded) = match settings.profile {
        Profile::Simulated => {
            let mut providers = settings.simulated.providers();
            // The load-test profile with the real VAD: Silero on every session.
            if settings.simulated.vad == adam_actors::simulated::SimulatedVad::Silero {
                let metrics = crate::silero::batch::VadMetrics::new(registry)
                    .map_err(|e| format!("registering VAD metrics: {e}"))?;
                let silero =
                    crate::silero::SileroVadFactory::new(&settings.embedded.silero, metrics)?;
                providers.vad = Arc::new(silero);
            }
            (providers, None)
        }
        Profile::Embedded => {
            let started = std::time::Instant::now();
            let embedded = crate::embedded::start(&settings.embedded, registry).await?;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "embedded models loaded"
            );
            (embedded.providers.clone(), Some(Arc::new(embedded)))
        }
    };
    let profile = match settings.profile {
        Profile::Embedded => "embedded",
        Profile::Simulated => "simulated",
    };
    let mut embedder_id = format!("{profile}:{}", providers.embedder.dimension());
    if !settings.uses_cloud() {
        providers.avatar = Arc::new(AvatarChoice::builtin(providers.avatar));
        return Ok(Assembled {
            providers,
            embedded,
            embedder_id,
        });
    }
    let metrics = ProviderMetrics::register(registry)
        .map_err(|e| format!("registering provider metrics: {e}"))?;
    let keys = &settings.keys;
    let mut avatars = AvatarChoice::builtin(providers.avatar.clone());
    if settings.uses_heygen() {
        avatars.heygen = Some(Arc::new(
            HeyGen::new(
                settings.heygen.clone(),
                keys.require(Account::HeyGen, "avatar")?,
                metrics.clone(),
            )
            .map_err(failed("heygen"))?,
        ));
    }
    providers.avatar = Arc::new(avatars);
    if !settings.stt.is_empty() {
        let mut chain: Vec<Arc<dyn SpeechToText>> = Vec::new();
        for vendor in &settings.stt {
            chain.push(match vendor {
                SttVendor::Profile => providers.stt.clone(),
                SttVendor::OpenAi => Arc::new(
                    OpenAiTranscriber::new(
                        settings.openai.transcription.clone(),
                        keys.require(Account::OpenAi, "stt")?,
                        metrics.clone(),
                    )
                    .map_err(failed("openai transcription"))?,
                ),
                SttVendor::Deepgram => {
                    let deepgram = Arc::new(
                        DeepgramStt::new(
                            settings.deepgram.clone(),
                            keys.require(Account::Deepgram, "stt")?,
                            metrics.clone(),
                        )
                        .map_err(failed("deepgram"))?,
                    );
                    // Deepgram decides where turns end only as the first choice: a
                    // fallback's turns end on the local VAD like the rest.
                    if settings.deepgram.end_of_turn && chain.is_empty() {
                        providers.listening = Some(deepgram.clone());
                    }
                    deepgram
                }
            });
        }
        providers.stt = Arc::new(FallbackStt(chain));
    }
    if !settings.answer.is_empty() {
        let mut chain: Vec<Arc<dyn AnswerEngine>> = Vec::new();
        for vendor in &settings.answer {
            chain.push(match vendor {
                AnswerVendor::Profile => providers.answer.clone(),
                AnswerVendor::OpenRouter => Arc::new(
                    ChatCompletions::new(
                        settings.openrouter.clone(),
                        keys.get(Account::OpenRouter).cloned(),
                        metrics.clone(),
                    )
                    .map_err(failed("openrouter"))?,
                ),
                AnswerVendor::OpenAi => Arc::new(
                    ChatCompletions::new(
                        settings.openai.chat.clone(),
                        Some(keys.require(Account::OpenAi, "answer")?),
                        metrics.clone(),
                    )
                    .map_err(failed("openai chat"))?,
                ),
            });
        }
        providers.answer = Arc::new(FallbackAnswer(chain));
    }
    if !settings.tts.is_empty() {
        let mut chain: Vec<Arc<dyn TextToSpeech>> = Vec::new();
        for vendor in &settings.tts {
            chain.push(match vendor {
                TtsVendor::Profile => providers.tts.clone(),
                TtsVendor::ElevenLabs => Arc::new(
                    ElevenLabsTts::new(
                        settings.elevenlabs.clone(),
                        keys.require(Account::ElevenLabs, "tts")?,
                        metrics.clone(),
                    )
                    .map_err(failed("elevenlabs"))?,
                ),
                TtsVendor::OpenAi => Arc::new(
                    OpenAiTts::new(
                        settings.openai.speech.clone(),
                        keys.require(Account::OpenAi, "tts")?,
                        metrics.clone(),
                    )
                    .map_err(failed("openai speech"))?,
                ),
            });
        }
        providers.tts = Arc::new(FallbackTts(chain));
    }
    match settings.embeddings {
        EmbeddingsVendor::Profile => {}
        EmbeddingsVendor::OpenAi => {
            let config = settings.openai.embeddings.clone();
            embedder_id = format!("openai:{}:{}", config.model, config.dimension);
            let embedder: Arc<dyn Embedder> = Arc::new(
                OpenAiEmbedder::new(config, keys.get(Account::OpenAi).cloned(), metrics)
                    .map_err(failed("openai embeddings"))?,
            );
            providers.embedder = embedder;
        }
    }
    Ok(Assembled {
        providers,
        embedded,
        embedder_id,
    })
}

/// Names the client whose construction failed.
fn failed(what: &'static str) -> impl Fn(ProviderError) -> String {
    move |e| format!("{what}: {e}")
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
        match (AvatarVendor::from_name(&settings.provider), &self.heygen) {
            (Some(AvatarVendor::HeyGen), Some(heygen)) => {
                heygen.start(session_id, settings, cancel)
            }
            (Some(AvatarVendor::HeyGen), None) => Box::pin(async {
                Err(ProviderError::Unavailable(format!(
                    "heygen is not configured on this server: set {}",
                    Account::HeyGen.env_var()
                )))
            }),
            (Some(AvatarVendor::Builtin) | None, _) => {
                self.builtin.start(session_id, settings, cancel)
            }
        }
    }
}
