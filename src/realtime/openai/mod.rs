//! The OpenAI Realtime API (GA schema) over WebSocket (`GET /v1/realtime`, handled in
//! `api::openai_realtime`), so the
//! OpenAI SDKs and the tools built on them talk to Adam unchanged. An adapter on the
//! transport contract (`socket.rs`) plus a sans-IO translation between the API's events
//! and Adam's session events (`translate.rs`, `config.rs`); G.711 for `audio/pcmu` and
//! `audio/pcma` (`g711.rs`). What is and is not supported: `docs/protocol.md#openai-realtime-compatibility`.

pub mod config;
pub mod g711;
pub mod secrets;
pub mod socket;
pub mod translate;

pub use config::PCM_RATE;
