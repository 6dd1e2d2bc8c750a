//! Realtime conversations over the wire: the node's actor system (registry, shared
//! caches, providers, transcript sink), session creation with one-time tickets, and the
//! transports: one driver (`transport`) with a WebSocket (`socket`) and a WebRTC
//! (`webrtc`) adapter. The protocol is documented in `docs/protocol.md`.

pub mod cloud;
pub mod leads;
pub mod quota;
pub mod routes;
pub mod sink;
pub mod socket;
pub mod tickets;
pub mod transport;
pub mod webrtc;

use std::sync::Arc;
use std::time::Duration;

use adam_actors::SessionRegistryHandle;
use adam_actors::Shared;
use adam_actors::embedding_cache::EmbeddingCacheHandle;
use adam_actors::metrics::ActorMetrics;
use adam_actors::semantic_cache::{SemanticCacheConfig, SemanticCacheHandle, SemanticTier};
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
    /// The transcript writer (flushed on shutdown).
    sink: Arc<sink::DbSink>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").finish_non_exhaustive()
    }
}

impl Realtime {
    /// Starts the registry and shared caches with the configured providers.
    pub async fn start(
        settings: &Settings,
        db: Db,
        clock: Clock,
        mailer: crate::email::Mailer,
        registry: &prometheus::Registry,
        semantic_tier: Option<Arc<dyn SemanticTier>>,
    ) -> anyhow::Result<Self> {
        let metrics = ActorMetrics::new(registry).context("registering conversation metrics")?;
        let (providers, embedded) = match settings.providers.profile.as_str() {
            "simulated" => {
                let mut providers = settings.providers.simulated.providers();
                if settings.providers.simulated.vad == adam_actors::simulated::SimulatedVad::Silero
                {
                    let metrics = adam_providers::silero::batch::VadMetrics::new(registry)
                        .context("registering VAD metrics")?;
                    let silero = adam_providers::silero::SileroVadFactory::new(
                        &settings.providers.embedded.silero,
                        metrics,
                    )
                    .map_err(anyhow::Error::msg)?;
                    providers.vad = Arc::new(silero);
                }
                (providers, None)
            }
            "embedded" => {
                let started = std::time::Instant::now();
                let embedded =
                    adam_providers::embedded::start(&settings.providers.embedded, registry)
                        .await
                        .map_err(anyhow::Error::msg)?;
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "embedded models loaded"
                );
                (embedded.providers.clone(), Some(Arc::new(embedded)))
            }
            other => anyhow::bail!("providers.profile `{other}` is not available"),
        };
        let (mut providers, embedder_id) =
            cloud::assemble(providers, &settings.providers, registry)?;
        let embeddings =
            EmbeddingCacheHandle::start(settings.cache.embedding_capacity, metrics.clone())
                .await
                .context("starting the embedding cache")?;
        let semantic = SemanticCacheHandle::start(
            SemanticCacheConfig {
                threshold: settings.cache.semantic_threshold,
                ttl: Duration::from_secs(settings.cache.semantic_ttl_secs),
                per_tenant: settings.cache.semantic_per_tenant,
            },
            metrics.clone(),
        )
        .await
        .context("starting the semantic cache")?;
        let semantic = match semantic_tier {
            Some(tier) => semantic.with_tier(tier),
            None => semantic,
        };
        let store = crate::knowledge::open_store(settings, &db, providers.embedder.dimension())
            .await
            .context("opening the vector store")?;
        let knowledge = crate::knowledge::ingest::Knowledge::start(
            crate::knowledge::ingest::KnowledgeDeps {
                db: db.clone(),
                store,
                embedder: providers.embedder.clone(),
                embedder_id,
                semantic: semantic.clone(),
                clock: clock.clone(),
                answer: providers.answer.clone(),
            },
            &settings.knowledge,
            registry,
        )
        .await
        .context("starting document ingestion")?;
        providers.retriever = Arc::new(crate::knowledge::retriever::DocumentRetriever::new(
            knowledge.clone(),
            settings.knowledge.context_max_tokens,
            settings.knowledge.lexical_fusion,
        ));
        let registry_handle =
            SessionRegistryHandle::start(settings.session.max_sessions, metrics.clone())
                .await
                .context("starting the session registry")?;
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
