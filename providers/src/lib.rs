//! Adam's providers: real local implementations of the `adam-actors` ports, so a fresh
//! install answers out loud with no API key and no network, and clients for cloud
//! services.
//!
//! - [`silero`]: Silero voice activity detection (ONNX Runtime, loaded at run time), batched
//!   across sessions on one service thread.
//! - [`whisper`]: Whisper speech to text (whisper.cpp through whisper-rs).
//! - [`minilm`]: all-MiniLM-L6-v2 sentence embeddings (candle).
//! - [`espeak`]: espeak-ng text to speech in a warm pool of worker processes (GPL, so never
//!   linked), with word and phoneme timings turned into visemes.
//! - [`llm`]: a local GGUF language model (SmolLM2 by default) run by candle.
//! - [`grounded`]: the default answer engine, which only states facts found in the
//!   retrieved passages.
//! - [`embedded`]: the whole embedded provider set, and the model check.
//! - [`pool`]: the bounded worker pools every model runs on, and the admission signal.
//! - [`registry`]: every vendor as a typed name, `[providers]`, and the one function that
//!   assembles the node's provider set.
//! - [`cloud`]: clients for cloud services (OpenAI-compatible LLMs, embeddings and
//!   speech, Deepgram, ElevenLabs), with timeouts, retries, circuit breakers and
//!   fallback chains.

pub mod cloud;
pub mod embedded;
pub mod espeak;
pub mod grounded;
pub mod llm;
pub mod minilm;
pub mod pool;
pub mod registry;
pub mod silero;
pub mod whisper;
