//! Building and running the application: connect and migrate the database, bootstrap
//! the first admin, assemble [`AppState`], bind the listener, serve until a shutdown
//! signal, then drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adam_actors::embedding_cache::EmbeddingCacheHandle;
use adam_actors::metrics::ActorMetrics;
use adam_actors::semantic_cache::{SemanticCacheConfig, SemanticCacheHandle, SemanticTier};
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenService;
use crate::bootstrap::{self, Bootstrapped};
use crate::clock::Clock;
use crate::cluster::{Cluster, ClusterTasks};
use crate::db::Db;
use crate::knowledge::ingest::{Knowledge, KnowledgeDeps};
use crate::metrics::Metrics;
use crate::middleware::{self, RateLimits};
use crate::realtime::Realtime;
use crate::settings::Settings;
use crate::state::AppState;

/// A built application, bound to its port and ready to run.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    bootstrapped: Option<Bootstrapped>,
    shutdown: Arc<Notify>,
}

impl Application {
    /// Builds with the real clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// Builds with an injected clock (tests move it forward).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database).await.with_context(|| {
            format!(
                "connecting to the database at {}",
                redact(&settings.database.url)
            )
        })?;
        db.migrate().await.context("running database migrations")?;
        let secret = crate::auth::keyfile::resolve(&settings)?;
        let tokens = TokenService::new(&secret, &settings.auth);
        let bootstrapped = bootstrap::run(&db, &settings, clock.now())
            .await
            .context("first-run bootstrap")?;
        crate::auth::password::warm_up().await;
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("binding {}", settings.http.listen))?;
        let metrics_listener = match settings.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        let metrics = Metrics::new().context("registering metrics")?;
        let cluster = Cluster::new(&settings.cluster, &settings.cache, metrics.registry())?;
        let email = crate::email::Mailer::new(
            &settings.email,
            &crate::email::Site::of(&settings),
            db.clone(),
            clock.clone(),
            metrics.registry(),
        )
        .context("setting up email")?;
        let realtime = start_realtime(
            &settings,
            &db,
            &clock,
            &email,
            metrics.registry(),
            cluster.semantic_tier(),
        )
        .await?;
        // An empty `demo_dir` (e.g. `ADAM__KNOWLEDGE__DEMO_DIR=""`) means none.
        let demo_dir = (settings.knowledge.demo_dir.as_ref()).filter(|d| !d.as_os_str().is_empty());
        if let (Some(first), Some(dir)) = (&bootstrapped, demo_dir) {
            let queued = realtime
                .knowledge
                .ingest_folder(&first.dealership_id, dir)
                .await
                .with_context(|| format!("loading the demo documents from {}", dir.display()))?;
            tracing::info!(documents = queued, dir = %dir.display(), "demo documents queued for the first dealership");
        }
        let state = AppState {
            email,
            login_throttle: Arc::new(LoginThrottle::new(&settings.auth, clock.clone())),
            rate_limits: Arc::new(RateLimits::new(&settings.rate_limit)),
            quotas: Arc::default(),
            metrics,
            realtime,
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            revoked_tokens: Arc::new(crate::auth::revoked::RevokedTokens::new(
                clock.clone(),
                cluster.clone(),
            )),
            cluster,
            tokens: Arc::new(tokens),
            settings: Arc::new(settings),
            clock,
            db,
        };
        Ok(Self {
            listener,
            metrics_listener,
            state,
            bootstrapped,
            shutdown: Arc::new(Notify::new()),
        })
    }

    /// The address actually bound (port 0 resolves here).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.settings.http.listen)
    }

    /// The address of the metrics listener (`metrics.listen`), if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A clone of the shared state (tests reach the database through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// What the first run created, if this start created it.
    pub fn bootstrapped(&self) -> Option<&Bootstrapped> {
        self.bootstrapped.as_ref()
    }

    /// A handle that stops the server as a signal would.
    pub fn shutdown_handle(&self) -> Arc<Notify> {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown handle fires, then lets in-flight
    /// requests finish within `http.shutdown_grace_secs`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
            shutdown,
            ..
        } = self;
        // Prometheus' own listener: it serves until the process stops, so the last scrape
        // of a draining node still works.
        let metrics_server = metrics_listener.map(|listener| {
            let app = crate::api::ops::metrics_router(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let grace = Duration::from_secs(state.settings.http.shutdown_grace_secs);
        let sweeper = middleware::spawn_sweeper(state.clone());
        let cluster: ClusterTasks = state.cluster.start(
            state.realtime.registry.clone(),
            state.realtime.shared.semantic.clone(),
        );
        let outbox = state.email.start_worker();
        let retention = crate::privacy::retention::Retention::new(state.metrics.registry())
            .context("registering the retention metrics")?
            .start(state.clone());
        let db = state.db.clone();
        let realtime = state.realtime.clone();
        let draining = state.draining.clone();
        let drain_timeout = Duration::from_secs(state.settings.session.drain_timeout_secs);
        let app = middleware::apply(crate::api::router(&state.settings.web.dir), state);
        let stopping = Arc::new(Notify::new());
        let signal = {
            let stopping = stopping.clone();
            let realtime_for_signal = realtime.clone();
            async move {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = shutdown.notified() => {}
                }
                // Readiness goes red at once so load balancers stop sending traffic; the
                // HTTP server keeps serving while live answers finish.
                draining.store(true, std::sync::atomic::Ordering::SeqCst);
                let registry = &realtime_for_signal.registry;
                let live = registry.drain("server shutting down").await;
                tracing::info!(live, "draining: live answers finish, then sessions close");
                let deadline = tokio::time::Instant::now() + drain_timeout;
                while registry.count().await > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let left = registry.count().await;
                if left > 0 {
                    tracing::warn!(left, "drain timeout: ending the remaining sessions");
                    registry.end_all("server shutting down");
                    let cut = tokio::time::Instant::now() + Duration::from_secs(2);
                    while registry.count().await > 0 && tokio::time::Instant::now() < cut {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tracing::info!("sessions closed; finishing in-flight requests");
                stopping.notify_waiters();
            }
        };
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let outcome = tokio::select! {
            result = server => result.context("serving HTTP"),
            _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_secs = grace.as_secs(), "drain timed out; closing remaining connections");
                Ok(())
            }
        };
        sweeper.abort();
        retention.stop();
        if let Some(server) = metrics_server {
            server.abort();
        }
        cluster.stop().await;
        outbox.stop().await;
        realtime.stop();
        // Every transcript reaches the database before the pool closes.
        realtime.flush_transcripts(Duration::from_secs(10)).await;
        db.close().await;
        tracing::info!("stopped");
        outcome
    }
}

/// Assembles the configured providers, starts the shared caches and the knowledge base,
/// then the conversation core over them.
pub async fn start_realtime(
    settings: &Settings,
    db: &Db,
    clock: &Clock,
    mailer: &crate::email::Mailer,
    registry: &prometheus::Registry,
    semantic_tier: Option<Arc<dyn SemanticTier>>,
) -> anyhow::Result<Realtime> {
    let assembled = adam_providers::registry::assemble(&settings.providers, registry)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut providers = assembled.providers;
    let metrics = ActorMetrics::new(registry).context("registering conversation metrics")?;
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
    let store =
        crate::knowledge::open_store(&settings.knowledge, db, providers.embedder.dimension())
            .await
            .context("opening the vector store")?;
    let knowledge = Knowledge::start(
        KnowledgeDeps {
            db: db.clone(),
            store,
            embedder: providers.embedder.clone(),
            embedder_id: assembled.embedder_id,
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
    let parts = crate::realtime::Parts {
        providers,
        embedded: assembled.embedded,
        knowledge,
        embeddings,
        semantic,
        metrics,
    };
    Realtime::start(
        parts,
        settings,
        db.clone(),
        clock.clone(),
        mailer.clone(),
        registry,
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
