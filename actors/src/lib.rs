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
//! Children never see the session's message type: each reports through its own event
//! type ([`stt_stream::SttEvent`], [`turn::TurnEvent`], [`tts_stream::TtsEvent`],
//! [`avatar::AvatarEvent`]) on a `DerivedActorRef`, and [`session::SessionMsg`] groups
//! them by sender. Only the registry (and these re-exports) use the session module.
//!
//! Module map: [`ports`] (provider traits), [`simulated`] (deterministic providers),
//! [`shared`] (node-wide handles), [`events`] (the wire events), [`endpoint`] (sans-IO
//! end-of-turn detection), [`audio`] (PCM helpers and resampling), [`sentences`]
//! (sentence chunking), [`speech_text`] (text as a voice should say it), [`visemes`], [`vector`], [`metrics`], `tasks` (ids, tasks that
//! die with their actor), and one module per actor.
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
pub mod shared;
pub mod simulated;
pub mod speech_text;
pub mod stt_stream;
mod tasks;
pub mod tts_stream;
pub mod turn;
pub mod vector;
pub mod visemes;

pub use registry::{RegistryError, SessionRegistry, SessionRegistryHandle};
pub use session::{SessionArgs, SessionHandle, SessionSettings};
pub use shared::Shared;
