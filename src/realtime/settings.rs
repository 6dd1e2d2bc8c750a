//! `[session]` (live conversations on this node) and `[cache]` (the shared caches).

use serde::{Deserialize, Serialize};

/// `[session]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Live sessions this node accepts before answering "busy".
    pub max_sessions: usize,
    /// Default client input rate (PCM16 mono).
    pub input_sample_rate: u32,
    /// Default output rate sent to clients.
    pub output_sample_rate: u32,
    /// Silence that ends a user turn, ms.
    pub silence_ms: u32,
    /// Speech needed before a turn (and a barge-in) counts, ms.
    pub min_speech_ms: u32,
    /// Longest user turn, ms.
    pub max_turn_ms: u32,
    /// Turns kept as conversation context.
    pub history_turns: usize,
    /// Lifetime of a WebSocket ticket, seconds.
    pub ticket_ttl_secs: u64,
    /// Largest WebSocket message accepted (larger closes with 1009).
    pub max_message_bytes: usize,
    /// Messages per second a client may send (more closes with 1008).
    pub max_messages_per_sec: u32,
    /// Seconds without any client message before the session closes.
    pub idle_timeout_secs: u64,
    /// Items queued towards a client before dropping.
    pub outbound_queue: usize,
    /// Consecutive drops after which a slow client is closed.
    pub slow_client_drops: u32,
    /// On shutdown, seconds live answers get to finish before sessions are cut.
    pub drain_timeout_secs: u64,
    /// Start transcribing after this much end-of-turn silence, before the turn is over
    /// (0: off). Must be below `silence_ms` to help.
    pub early_transcription_ms: u32,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            max_sessions: 2000,
            input_sample_rate: 16_000,
            output_sample_rate: 24_000,
            silence_ms: 500,
            min_speech_ms: 200,
            max_turn_ms: 30_000,
            history_turns: 6,
            ticket_ttl_secs: 30,
            max_message_bytes: 64 * 1024,
            max_messages_per_sec: 200,
            idle_timeout_secs: 60,
            outbound_queue: 512,
            slow_client_drops: 250,
            drain_timeout_secs: 30,
            early_transcription_ms: 0,
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Query embeddings kept.
    pub embedding_capacity: usize,
    /// Cosine similarity for a semantic cache hit.
    pub semantic_threshold: f32,
    /// Seconds a cached answer stays valid.
    pub semantic_ttl_secs: u64,
    /// Cached answers kept per dealership.
    pub semantic_per_tenant: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            embedding_capacity: 10_000,
            semantic_threshold: 0.92,
            semantic_ttl_secs: 3600,
            semantic_per_tenant: 1000,
        }
    }
}

impl SessionSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let rate_ok = |r: u32| (8_000..=48_000).contains(&r);
        if !rate_ok(self.input_sample_rate) {
            return Err(("session.input_sample_rate", "must be 8000 to 48000".into()));
        }
        if !rate_ok(self.output_sample_rate) {
            return Err(("session.output_sample_rate", "must be 8000 to 48000".into()));
        }
        if self.max_sessions == 0 {
            return Err(("session.max_sessions", "must be at least 1".into()));
        }
        if !(100..=5_000).contains(&self.silence_ms) {
            return Err(("session.silence_ms", "must be 100 to 5000".into()));
        }
        if self.min_speech_ms > 2_000 {
            return Err(("session.min_speech_ms", "must be at most 2000".into()));
        }
        if !(1_000..=120_000).contains(&self.max_turn_ms) {
            return Err(("session.max_turn_ms", "must be 1000 to 120000".into()));
        }
        if self.max_message_bytes < 1024 {
            return Err(("session.max_message_bytes", "must be at least 1024".into()));
        }
        if self.outbound_queue < 16 || self.slow_client_drops == 0 {
            return Err((
                "session.outbound_queue",
                "must be at least 16 (and slow_client_drops at least 1)".into(),
            ));
        }
        if self.max_messages_per_sec == 0
            || self.ticket_ttl_secs == 0
            || self.idle_timeout_secs == 0
        {
            return Err((
                "session",
                "max_messages_per_sec, ticket_ttl_secs and idle_timeout_secs must be positive"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl CacheSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.semantic_threshold) {
            return Err(("cache.semantic_threshold", "must be between 0 and 1".into()));
        }
        Ok(())
    }
}
