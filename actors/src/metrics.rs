//! Conversation metrics: stage latency histograms, live sessions and actors, restarts,
//! dropped frames and cache hits. Registered into a registry the caller owns.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Every series of the conversation core.
#[derive(Clone, Debug)]
pub struct ActorMetrics {
    /// End of speech → final transcript.
    pub stt_latency: Histogram,
    /// Final transcript → first answer token.
    pub answer_first_token: Histogram,
    /// First answer token → first audio out.
    pub tts_first_audio: Histogram,
    /// End of speech → first audio out.
    pub voice_to_voice: Histogram,
    /// One vector-store search (the retrieval stage of a turn).
    pub retrieval: Histogram,
    /// Speech start → audio cleared on barge-in.
    pub barge_in_stop: Histogram,
    /// Live sessions.
    pub live_sessions: IntGauge,
    /// Live actors of all kinds.
    pub live_actors: IntGauge,
    /// Child actor restarts by kind.
    pub restarts: IntCounterVec,
    /// Audio frames dropped by kind (`outbound_full`, `inbound_full`).
    pub dropped_frames: IntCounterVec,
    /// Cache lookups by level (`embedding`, `semantic`, `context`: a follow-up read with
    /// the session's recent turns) and result (`hit`, `miss`).
    pub cache_lookups: IntCounterVec,
    /// Responses by final status.
    pub responses: IntCounterVec,
    /// Sessions refused because the node is full.
    pub busy_refusals: IntCounter,
    /// Answers the answer engine was asked for (semantic cache hits do not count).
    pub answers_generated: IntCounter,
    /// Answers refused because a session asked for more than `turns_per_minute`.
    pub turns_refused: IntCounter,
    /// Remote avatars (HeyGen) by outcome: `started`, `start_failed`, `lost` (failed
    /// during a session: dead connection, a send queue that stayed full, ended by the
    /// vendor).
    pub remote_avatars: IntCounterVec,
}

fn latency(name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    ]))
}

impl ActorMetrics {
    /// Creates the series and registers them.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            stt_latency: latency("stage_stt_seconds", "End of speech to final transcript")?,
            answer_first_token: latency(
                "stage_answer_first_token_seconds",
                "Final transcript to first answer token",
            )?,
            tts_first_audio: latency(
                "stage_tts_first_audio_seconds",
                "First answer token to first audio out",
            )?,
            voice_to_voice: latency(
                "voice_to_voice_seconds",
                "End of user speech to first answer audio",
            )?,
            retrieval: latency(
                "stage_retrieval_seconds",
                "Vector store search of one question",
            )?,
            barge_in_stop: latency(
                "barge_in_stop_seconds",
                "Barge-in detected to audio cleared",
            )?,
            live_sessions: IntGauge::new("live_sessions", "Conversations in progress")?,
            live_actors: IntGauge::new("live_actors", "Actors alive in conversation trees")?,
            restarts: IntCounterVec::new(
                Opts::new("actor_restarts_total", "Child actor restarts"),
                &["kind"],
            )?,
            dropped_frames: IntCounterVec::new(
                Opts::new("dropped_frames_total", "Audio frames or events dropped"),
                &["reason"],
            )?,
            cache_lookups: IntCounterVec::new(
                Opts::new("cache_lookups_total", "Cache lookups by level and result"),
                &["level", "result"],
            )?,
            responses: IntCounterVec::new(
                Opts::new("responses_total", "Responses by status"),
                &["status"],
            )?,
            busy_refusals: IntCounter::new(
                "sessions_refused_busy_total",
                "Sessions refused: node full",
            )?,
            answers_generated: IntCounter::new(
                "answers_generated_total",
                "Answers requested from the answer engine",
            )?,
            turns_refused: IntCounter::new(
                "turns_refused_total",
                "Answers refused: a session asked for more than its turns per minute",
            )?,
            remote_avatars: IntCounterVec::new(
                Opts::new(
                    "remote_avatars_total",
                    "Remote avatars by outcome (started, start_failed, lost)",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(m.stt_latency.clone()))?;
        registry.register(Box::new(m.answer_first_token.clone()))?;
        registry.register(Box::new(m.tts_first_audio.clone()))?;
        registry.register(Box::new(m.voice_to_voice.clone()))?;
        registry.register(Box::new(m.barge_in_stop.clone()))?;
        registry.register(Box::new(m.retrieval.clone()))?;
        registry.register(Box::new(m.live_sessions.clone()))?;
        registry.register(Box::new(m.live_actors.clone()))?;
        registry.register(Box::new(m.restarts.clone()))?;
        registry.register(Box::new(m.dropped_frames.clone()))?;
        registry.register(Box::new(m.cache_lookups.clone()))?;
        registry.register(Box::new(m.responses.clone()))?;
        registry.register(Box::new(m.busy_refusals.clone()))?;
        registry.register(Box::new(m.answers_generated.clone()))?;
        registry.register(Box::new(m.turns_refused.clone()))?;
        registry.register(Box::new(m.remote_avatars.clone()))?;
        Ok(m)
    }

    /// Series registered in a private registry (tests, tools).
    pub fn unregistered() -> Self {
        match Self::new(&Registry::new()) {
            Ok(m) => m,
            // Registration into a fresh registry only fails on duplicate names, which
            // `new` does not have.
            Err(e) => unreachable!("fresh registry refused metrics: {e}"),
        }
    }
}

/// Counts an actor as alive until dropped.
#[derive(Debug)]
pub struct AliveGuard(IntGauge);

impl AliveGuard {
    /// Increments the gauge now, decrements on drop.
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
