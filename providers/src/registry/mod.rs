//! The provider registry: every vendor a stage can use, as a typed name, and the one
//! place that turns `[providers]` into the node's provider set.
//!
//! - The stage enums ([`SttVendor`], [`AnswerVendor`], [`TtsVendor`],
//!   [`EmbeddingsVendor`], [`AvatarVendor`]) are what `config.toml` names; an unknown
//!   name fails to load, naming the key (serde), never a silent fall-through.
//! - [`Account`] is a cloud account: the table of API-key variables the server reads.
//! - [`ProviderSettings`] is `[providers]`, with its own [`ProviderSettings::validate`].
//! - [`assemble`] starts the profile's providers and puts every configured chain in place.
//!
//! A new vendor for a stage is: its client file under `cloud/`, a variant in the stage's
//! enum (and in [`Account`] if it has a key), its config field in [`ProviderSettings`],
//! and one match arm in [`assemble`] — plus its fake and its test.

mod assemble;

pub use assemble::{Assembled, assemble};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The provider set the stages fall back to: `embedded` (local models, the default) or
/// `simulated` (made-up transcripts and answers with configurable latencies; tests and
/// load tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Whisper, Silero, MiniLM, espeak-ng and the grounded answer engine, in process.
    #[default]
    Embedded,
    /// Deterministic stand-ins with cloud-like latencies.
    Simulated,
}

/// A speech-to-text vendor in `providers.stt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SttVendor {
    /// The profile's own (Whisper when embedded).
    Profile,
    /// OpenAI transcription.
    #[serde(rename = "openai")]
    OpenAi,
    /// Deepgram live transcription.
    Deepgram,
}

/// An answer vendor in `providers.answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerVendor {
    /// The profile's own (the grounded engine when embedded).
    Profile,
    /// OpenRouter, or any OpenAI-compatible chat server.
    #[serde(rename = "openrouter")]
    OpenRouter,
    /// OpenAI chat completions.
    #[serde(rename = "openai")]
    OpenAi,
}

/// A text-to-speech vendor in `providers.tts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsVendor {
    /// The profile's own (espeak-ng when embedded).
    Profile,
    /// ElevenLabs streaming speech.
    #[serde(rename = "elevenlabs")]
    ElevenLabs,
    /// OpenAI speech.
    #[serde(rename = "openai")]
    OpenAi,
}

/// The embedder documents are indexed with (`providers.embeddings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingsVendor {
    /// The profile's own (MiniLM when embedded).
    #[default]
    Profile,
    /// OpenAI-compatible embeddings.
    #[serde(rename = "openai")]
    OpenAi,
}

/// The avatar of dealerships that name none (`providers.avatar`), and the names a
/// dealership's `avatar.provider` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvatarVendor {
    /// Drawn by the web client from the visemes.
    #[default]
    Builtin,
    /// HeyGen LiveAvatar (LITE mode).
    #[serde(rename = "heygen")]
    HeyGen,
}

impl AvatarVendor {
    /// The name used in settings and in a dealership's `avatar.provider`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::HeyGen => "heygen",
        }
    }

    /// The vendor a dealership's `avatar.provider` names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Builtin, Self::HeyGen]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

/// A cloud account whose API key comes from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// OpenRouter (answers).
    OpenRouter,
    /// OpenAI (answers, embeddings, transcription, speech).
    OpenAi,
    /// Deepgram (transcription).
    Deepgram,
    /// ElevenLabs (speech).
    ElevenLabs,
    /// HeyGen LiveAvatar (the remote avatar).
    HeyGen,
}

impl Account {
    /// Every account, in report order.
    pub const ALL: [Account; 5] = [
        Self::OpenRouter,
        Self::OpenAi,
        Self::Deepgram,
        Self::ElevenLabs,
        Self::HeyGen,
    ];

    /// Lower-case vendor name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenRouter => "openrouter",
            Self::OpenAi => "openai",
            Self::Deepgram => "deepgram",
            Self::ElevenLabs => "elevenlabs",
            Self::HeyGen => "heygen",
        }
    }

    /// The environment variable holding the key.
    pub fn env_var(self) -> &'static str {
        use crate::cloud::keys;
        match self {
            Self::OpenRouter => keys::OPENROUTER,
            Self::OpenAi => keys::OPENAI,
            Self::Deepgram => keys::DEEPGRAM,
            Self::ElevenLabs => keys::ELEVENLABS,
            Self::HeyGen => keys::HEYGEN,
        }
    }

    /// The dotted settings key the variable stands for (never read from files).
    pub fn settings_key(self) -> &'static str {
        match self {
            Self::OpenRouter => "providers.openrouter.api_key",
            Self::OpenAi => "providers.openai.api_key",
            Self::Deepgram => "providers.deepgram.api_key",
            Self::ElevenLabs => "providers.elevenlabs.api_key",
            Self::HeyGen => "providers.heygen.api_key",
        }
    }
}

impl SttVendor {
    /// The account whose key it needs (`None`: the profile's own).
    pub fn account(self) -> Option<Account> {
        match self {
            Self::Profile => None,
            Self::OpenAi => Some(Account::OpenAi),
            Self::Deepgram => Some(Account::Deepgram),
        }
    }
}

impl AnswerVendor {
    /// The account whose key it uses (OpenRouter's is optional: a local
    /// OpenAI-compatible server needs none).
    pub fn account(self) -> Option<Account> {
        match self {
            Self::Profile => None,
            Self::OpenRouter => Some(Account::OpenRouter),
            Self::OpenAi => Some(Account::OpenAi),
        }
    }
}

impl TtsVendor {
    /// The account whose key it needs (`None`: the profile's own).
    pub fn account(self) -> Option<Account> {
        match self {
            Self::Profile => None,
            Self::ElevenLabs => Some(Account::ElevenLabs),
            Self::OpenAi => Some(Account::OpenAi),
        }
    }
}

/// Cloud API keys (never in files): one slot per [`Account`].
#[derive(Debug, Clone, Default)]
pub struct ProviderKeys([Option<SecretString>; Account::ALL.len()]);

impl ProviderKeys {
    /// Reads every account's variable (unset or blank: none).
    pub fn from_env() -> Self {
        let mut keys = Self::default();
        for account in Account::ALL {
            if let Some(key) = crate::cloud::keys::from_env(account.env_var()) {
                keys.set(account, key);
            }
        }
        keys
    }

    /// The key of `account`, if set.
    pub fn get(&self, account: Account) -> Option<&SecretString> {
        self.0[account as usize].as_ref()
    }

    /// Sets the key of `account`.
    pub fn set(&mut self, account: Account, key: SecretString) {
        self.0[account as usize] = Some(key);
    }

    /// The key of `account`, or an error naming the variable to set for `stage`.
    pub fn require(&self, account: Account, stage: &str) -> Result<SecretString, String> {
        self.get(account).cloned().ok_or_else(|| {
            format!(
                "providers.{stage} uses {} but its key is not set: set {}",
                account.name(),
                account.env_var()
            )
        })
    }
}

/// `[providers]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// `embedded` (local models, the default, also without `config.toml`) or `simulated`
    /// (deterministic, made-up transcripts and answers with configurable latencies; tests
    /// and load tests only, refused in `production`): voice activity detection, and every
    /// stage whose chain below is empty or names `profile`.
    pub profile: Profile,
    /// Latencies and texts of the simulated providers.
    pub simulated: adam_actors::simulated::SimulatedConfig,
    /// Model files and pools of the embedded providers.
    pub embedded: crate::embedded::EmbeddedConfig,
    /// Speech to text, tried in order while nothing was produced. Empty: the profile's own.
    pub stt: Vec<SttVendor>,
    /// Answers, tried in order while nothing was produced.
    pub answer: Vec<AnswerVendor>,
    /// Speech, tried in order while nothing was produced.
    pub tts: Vec<TtsVendor>,
    /// Embeddings (one, since documents are indexed with it).
    pub embeddings: EmbeddingsVendor,
    /// OpenRouter (or any OpenAI-compatible chat server).
    pub openrouter: crate::cloud::chat::ChatConfig,
    /// OpenAI's chat, embeddings, transcription and speech.
    pub openai: OpenAiSettings,
    /// Deepgram live transcription.
    pub deepgram: crate::cloud::deepgram::DeepgramConfig,
    /// ElevenLabs speech.
    pub elevenlabs: crate::cloud::elevenlabs::ElevenLabsConfig,
    /// The avatar of dealerships whose `avatar` setting names no `provider`.
    pub avatar: AvatarVendor,
    /// HeyGen LiveAvatar (LITE mode): built when its key is set, or when `avatar` is
    /// `heygen`.
    pub heygen: crate::cloud::heygen::HeyGenConfig,
    /// API keys, from the environment only (`ADAM__PROVIDERS__<NAME>__API_KEY`).
    #[serde(skip)]
    pub keys: ProviderKeys,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            profile: Profile::Embedded,
            simulated: Default::default(),
            embedded: Default::default(),
            stt: Vec::new(),
            answer: Vec::new(),
            tts: Vec::new(),
            embeddings: EmbeddingsVendor::Profile,
            openrouter: Default::default(),
            openai: OpenAiSettings::default(),
            deepgram: Default::default(),
            elevenlabs: Default::default(),
            avatar: AvatarVendor::Builtin,
            heygen: Default::default(),
            keys: ProviderKeys::default(),
        }
    }
}

impl ProviderSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`. Vendor names
    /// are checked as they load.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.embedded
            .silero
            .validate()
            .map_err(|problem| ("providers.embedded.silero", problem))?;
        // OpenAI answers 400 to every sentence otherwise: refuse it now, naming the key.
        if self.tts.contains(&TtsVendor::OpenAi)
            && let Some((field, problem)) = self.openai.speech.unsupported()
        {
            let key = match field {
                "voice" => "providers.openai.speech.voice",
                _ => "providers.openai.speech.instructions",
            };
            return Err((key, problem));
        }
        if self.avatar == AvatarVendor::HeyGen && self.heygen.avatar_id.trim().is_empty() {
            return Err((
                "providers.heygen.avatar_id",
                "is required when providers.avatar is \"heygen\"".into(),
            ));
        }
        Ok(())
    }

    /// True when anything but the profile's own providers is configured.
    pub fn uses_cloud(&self) -> bool {
        self.stt.iter().any(|v| v.account().is_some())
            || self.answer.iter().any(|v| v.account().is_some())
            || self.tts.iter().any(|v| v.account().is_some())
            || self.embeddings != EmbeddingsVendor::Profile
            || self.uses_heygen()
    }

    /// True when the HeyGen client is built (the default avatar, or its key is set).
    pub fn uses_heygen(&self) -> bool {
        self.avatar == AvatarVendor::HeyGen || self.keys.get(Account::HeyGen).is_some()
    }
}

/// `[providers.openai]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSettings {
    /// Chat completions.
    pub chat: crate::cloud::chat::ChatConfig,
    /// Embedding model configuration.
    pub embeddings: crate::cloud::embeddings::EmbeddingsConfig,
    /// Transcription.
    pub transcription: crate::cloud::openai_stt::TranscriptionConfig,
    /// Speech.
    pub speech: crate::cloud::openai_tts::OpenAiTtsConfig,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            chat: crate::cloud::chat::ChatConfig {
                name: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                model: "gpt-4o-mini".into(),
                ..Default::default()
            },
            embeddings: Default::default(),
            transcription: Default::default(),
            speech: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip_and_unknown_names_are_refused() {
        let parsed: Vec<TtsVendor> =
            serde_json::from_str(r#"["profile","elevenlabs","openai"]"#).expect("known names");
        assert_eq!(
            parsed,
            [TtsVendor::Profile, TtsVendor::ElevenLabs, TtsVendor::OpenAi]
        );
        let err = serde_json::from_str::<Vec<SttVendor>>(r#"["whisperx"]"#).expect_err("unknown");
        assert!(err.to_string().contains("whisperx"), "{err}");
        assert_eq!(
            AvatarVendor::from_name("heygen"),
            Some(AvatarVendor::HeyGen)
        );
        assert_eq!(AvatarVendor::from_name("vidyard"), None);
    }

    #[test]
    fn every_account_has_its_own_variable_and_key_slot() {
        let mut keys = ProviderKeys::default();
        for (i, account) in Account::ALL.into_iter().enumerate() {
            assert_eq!(account as usize, i);
            assert!(account.env_var().starts_with("ADAM__PROVIDERS__"));
            assert!(account.settings_key().ends_with(".api_key"));
            keys.set(account, SecretString::from(account.name().to_owned()));
        }
        let err = ProviderKeys::default()
            .require(Account::Deepgram, "stt")
            .expect_err("no key");
        assert!(err.contains(crate::cloud::keys::DEEPGRAM), "{err}");
        assert!(keys.require(Account::Deepgram, "stt").is_ok());
    }
}
