//! Adam's conversation core: each live conversation is a supervised ractor tree.
//!
//! ```text
//! SessionRegistry ── Session ─┬─ SttStream        (VAD + end of turn → transcript)
//!                             ├─ Turn (per reply)  (cache → retrieval → answer tokens → sentences)
//!                             ├─ TtsStream        (sentences → paced audio frames)
//!                             └─ AvatarController (word timings → visemes; a remote
//!                                                  avatar gets the answer audio)
//! EmbeddingCache, SemanticCache: shared by every session.
//! ```
//!
//! Module map: [`ports`] (provider traits), [`simulated`] (deterministic providers),
//! [`events`] (the wire events), [`endpoint`] (sans-IO end-of-turn detection),
//! [`audio`] (PCM helpers and resampling), [`sentences`] (sentence chunking),
//! [`visemes`], [`vector`], [`metrics`], and one module per actor.
//!
//! This crate knows nothing of HTTP, SQL or sockets: transports feed audio and events in
//! through [`session::SessionHandle`] and read [`events::Outbound`] items from a channel.

pub mod audio;
pub mod avatar;
pub mod embedding_cache;
pub mod endpoint;
pub mod events;
pub mod metrics;
pub mod outbox;
pub mod ports;
pub mod registry;
pub mod rpc;
pub mod semantic_cache;
pub mod sentences;
pub mod session;
pub mod simulated;
pub mod stt_stream;
pub mod tts_stream;
pub mod turn;
pub mod vector;
pub mod visemes;

pub use registry::{RegistryError, SessionRegistry, SessionRegistryHandle};
pub use session::{SessionArgs, SessionHandle, SessionSettings};
