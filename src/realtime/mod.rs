//! Realtime conversations over the wire: the node's actor system (registry, shared
//! caches, providers, transcript sink), session creation with one-time tickets, and the
//! transports: one driver (`transport`) with a WebSocket (`socket`), a WebRTC
//! (`webrtc`) and an OpenAI Realtime API (`openai`) adapter. The protocol is documented in `docs/protocol.md`.

pub mod openai;
pub mod quota;
mod settings;
pub mod sink;
pub mod socket;
pub mod tickets;
pub mod transport;
pub mod webrtc;

pub use settings::{CacheSettings, SessionSettings};

use std::sync::Arc;
use std::time::Duration;

use adam_actors::SessionRegistryHandle;
use adam_actors::Shared;
use adam_actors::embedding_cache::EmbeddingCacheHandle;
use adam_actors::metrics::ActorMetrics;
use adam_actors::semantic_cache::SemanticCacheHandle;
use anyhow::Context;

use crate::clock::Clock;
use crate::db::Db;
use crate::settings::Settings;

/// Everything live conversations need, shared by all requests.
#[derive(Clone)]
pub struct Realtime {
    /// Root of the session trees.
    pub registry: SessionRegistryHandle,
    /// Providers, caches, sink and metrics.
    pub shared: Arc<Shared>,
    /// One-time WebSocket tickets.
    pub tickets: Arc<tickets::Tickets>,
    /// The embedded models, when that profile runs (admission control, knowledge).
    pub embedded: Option<Arc<adam_providers::embedded::Embedded>>,
    /// Documents, ingestion and the vector store.
    pub knowledge: Arc<crate::knowledge::ingest::Knowledge>,
    /// The WebRTC transport.
    pub webrtc: Arc<webrtc::WebRtc>,
    /// Unredeemed OpenAI client secrets (`POST /v1/realtime/client_secrets`).
    pub client_secrets: Arc<openai::secrets::Secrets>,
    /// Each dealership's names, for speech recognition.
    pub vocabularies: Arc<crate::knowledge::vocabulary::Vocabularies>,
    /// The transcript writer (flushed on shutdown).
    sink: Arc<sink::DbSink>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").finish_non_exhaustive()
    }
}

/// What a node's conversations are built from, started beforehand by
/// [`crate::startup::start_realtime`]: the assembled providers (with the document
/// retriever in place), the shared caches and the knowledge base.
pub struct Parts {
    /// Every stage's provider.
    pub providers: adam_actors::ports::Providers,
    /// The embedded models, when that profile runs.
    pub embedded: Option<Arc<adam_providers::embedded::Embedded>>,
    /// Documents, ingestion and the vector store.
    pub knowledge: Arc<crate::knowledge::ingest::Knowledge>,
    /// The shared query-embedding cache.
    pub embeddings: EmbeddingCacheHandle,
    /// The shared semantic answer cache.
    pub semantic: SemanticCacheHandle,
    /// Conversation metrics.
    pub metrics: ActorMetrics,
}

impl Realtime {
    /// Starts the session registry, the transcript sink and the transports over `parts`.
    pub async fn start(
        parts: Parts,
        settings: &Settings,
        db: Db,
        clock: Clock,
        mailer: crate::email::Mailer,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let Parts {
            providers,
            embedded,
            knowledge,
            embeddings,
            semantic,
            metrics,
        } = parts;
        let registry_handle =
            SessionRegistryHandle::start(settings.session.max_sessions, metrics.clone())
                .await
                .context("starting the session registry")?;
        let vocabularies = Arc::new(crate::knowledge::vocabulary::Vocabularies::new(
            db.clone(),
            settings.vocabulary.clone(),
        ));
        let sink = Arc::new(
            sink::DbSink::start(db, clock, mailer, registry)
                .context("registering transcript metrics")?,
        );
        let transcripts: Arc<dyn adam_actors::ports::TranscriptSink> =
            if settings.log.otlp_endpoint.trim().is_empty() {
                sink.clone()
            } else {
                let traces = crate::traces::TraceExporter::start(
                    &settings.log.otlp_endpoint,
                    &settings.log.otlp_service_name,
                    registry,
                )
                .context("starting the trace exporter")?;
                Arc::new(crate::traces::TracingSink::new(sink.clone(), traces))
            };
        let shared = Arc::new(Shared {
            providers,
            embeddings,
            semantic,
            sink: transcripts,
            metrics,
        });
        let webrtc =
            Arc::new(webrtc::WebRtc::new(&settings.webrtc, registry).context("starting WebRTC")?);
        Ok(Self {
            webrtc,
            client_secrets: Arc::default(),
            vocabularies,
            knowledge,
            sink,
            embedded,
            registry: registry_handle,
            shared,
            tickets: Arc::new(tickets::Tickets::new(Duration::from_secs(
                settings.session.ticket_ttl_secs,
            ))),
        })
    }

    /// True when a model's queue is so long that a new session would slow every other.
    pub fn saturated(&self) -> bool {
        self.embedded.as_ref().is_some_and(|e| e.saturated())
    }

    /// True while transcript writes fail because the database is unavailable.
    pub fn transcripts_failing(&self) -> bool {
        self.sink.failing()
    }

    /// Waits (up to `limit`) until every transcript write reached the database.
    pub async fn flush_transcripts(&self, limit: Duration) {
        if tokio::time::timeout(limit, self.sink.flush())
            .await
            .is_err()
        {
            tracing::error!("transcript writes still pending at shutdown");
        }
    }

    /// Stops every session and the shared actors.
    pub fn stop(&self) {
        self.registry.stop();
        self.shared.embeddings.stop();
        self.shared.semantic.stop();
    }
}
