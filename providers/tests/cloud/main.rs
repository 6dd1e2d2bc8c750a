//! The cloud clients against fake vendor servers that speak each vendor's wire protocol:
//! streamed output assembled, retries on 429 and 5xx (and none once output was emitted),
//! timeouts, malformed and mid-stream errors, dead sockets, cancellation, the circuit
//! breaker, fallback chains and metrics; the HeyGen LiveAvatar session's lifecycle.

mod fakes;
mod support;

mod chat;
mod deepgram;
mod elevenlabs;
mod embeddings;
mod heygen;
mod openai_stt;
mod openai_tts;
mod resilience;
