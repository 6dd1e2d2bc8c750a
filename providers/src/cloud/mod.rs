//! Clients for cloud speech and language services, each implementing an `adam-actors`
//! port, and the resilience layer they share.
//!
//! - [`chat`]: answers from any OpenAI-compatible streaming chat completions API
//!   (OpenRouter by default; OpenAI, llama.cpp server, vLLM, Ollama's `/v1`).
//! - [`prompt`]: the prompt built from an answer request within a token budget, and the
//!   citation markers taken out of the spoken answer.
//! - [`embeddings`]: OpenAI-compatible embeddings, and the startup dimension check.
//! - [`openai_stt`]: OpenAI transcription of one utterance (WAV upload).
//! - [`deepgram`]: Deepgram live transcription over a WebSocket, per utterance or as a
//!   streaming session with Deepgram's own endpointing.
//! - [`elevenlabs`]: ElevenLabs text to speech over its `stream-input` WebSocket, with
//!   word timings from the character alignment and dead-socket detection.
//! - [`openai_tts`]: OpenAI text to speech (raw PCM streamed over HTTP).
//! - [`heygen`]: HeyGen LiveAvatar in LITE mode, a remote avatar that renders Adam's own
//!   speech into a LiveKit room (session start, keep-alive, stop, the command socket).
//! - [`resilience`]: timeouts, retries before the first output, the circuit breaker and
//!   metrics.
//! - [`guarded`]: the resilience layer around any port implementation.
//! - [`breaker`]: the circuit breaker state machine.
//! - [`fallback`]: provider chains per stage that move on only while nothing was emitted.
//! - [`metrics`]: the `provider_*` Prometheus series.
//! - [`sse`], [`http`], [`ws`], [`audio`]: wire helpers (SSE framing, HTTP error
//!   mapping, WebSocket handshakes, PCM and WAV).
//!
//! API keys never appear in the configuration structs: the server reads them from the
//! environment variables in [`keys`] and passes them to the constructors.

pub mod audio;
pub mod breaker;
pub mod chat;
pub mod deepgram;
pub mod elevenlabs;
pub mod embeddings;
pub mod fallback;
pub mod guarded;
pub mod heygen;
pub mod http;
pub mod metrics;
pub mod openai_stt;
pub mod openai_tts;
pub mod prompt;
pub mod resilience;
pub mod sse;
pub mod ws;

/// The environment variables API keys are read from (by the server; the clients take
/// the key as a [`secrecy::SecretString`]).
pub mod keys {
    use secrecy::SecretString;

    /// OpenRouter (the answer LLM by default).
    pub const OPENROUTER: &str = "ADAM__PROVIDERS__OPENROUTER__API_KEY";
    /// OpenAI (LLM, embeddings, transcription, speech).
    pub const OPENAI: &str = "ADAM__PROVIDERS__OPENAI__API_KEY";
    /// Deepgram (live transcription).
    pub const DEEPGRAM: &str = "ADAM__PROVIDERS__DEEPGRAM__API_KEY";
    /// ElevenLabs (speech).
    pub const ELEVENLABS: &str = "ADAM__PROVIDERS__ELEVENLABS__API_KEY";
    /// HeyGen LiveAvatar (remote avatar).
    pub const HEYGEN: &str = "ADAM__PROVIDERS__HEYGEN__API_KEY";

    /// The key in `var`, taken verbatim; `None` when unset or blank.
    pub fn from_env(var: &str) -> Option<SecretString> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(SecretString::from)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::chat::ChatConfig;
    use super::deepgram::DeepgramConfig;
    use super::elevenlabs::ElevenLabsConfig;
    use super::embeddings::EmbeddingsConfig;
    use super::heygen::HeyGenConfig;
    use super::openai_stt::TranscriptionConfig;
    use super::openai_tts::OpenAiTtsConfig;

    fn check<C: Serialize + DeserializeOwned + Default + PartialEq + std::fmt::Debug>() {
        let serialized = serde_json::to_value(C::default()).expect("serialize");
        let text = serialized.to_string();
        assert!(!text.contains("key\""), "no key field in {text}");
        assert_eq!(
            serde_json::from_value::<C>(serialized).expect("round trip"),
            C::default()
        );
        // Missing fields take their defaults; a key in the file is refused.
        assert_eq!(
            serde_json::from_value::<C>(json!({})).expect("defaults"),
            C::default()
        );
        assert!(serde_json::from_value::<C>(json!({"api_key": "sk-123"})).is_err());
        assert!(serde_json::from_value::<C>(json!({"resilience": {"retries": 3}})).is_err());
        let partial: C =
            serde_json::from_value(json!({"resilience": {"max_retries": 0}})).expect("partial");
        let back = serde_json::to_value(&partial).expect("serialize");
        assert_eq!(back["resilience"]["max_retries"], 0);
        assert_eq!(back["resilience"]["idle_timeout_ms"], 5_000);
    }

    #[test]
    fn configs_have_defaults_refuse_unknown_fields_and_hold_no_keys() {
        check::<ChatConfig>();
        check::<EmbeddingsConfig>();
        check::<TranscriptionConfig>();
        check::<DeepgramConfig>();
        check::<ElevenLabsConfig>();
        check::<OpenAiTtsConfig>();
        check::<HeyGenConfig>();
    }
}
