//! Several nodes, one deployment: with `cluster.redis_url` set, nodes share Redis for the
//! session directory and cross-node control ([`control`]), the semantic-cache tier
//! ([`semantic`]), session tickets, rate-limit counters ([`rate`]) and revoked access
//! tokens ([`revoked`]). Without it the node runs alone and every method answers for this
//! node only.
//!
//! Redis is never on the path that keeps a conversation going: when it is down, requests
//! fall back to this node's own state, a warning is logged once and `adam_redis_errors_total`
//! counts each failure.

pub mod control;
pub mod directory;
pub mod rate;
pub mod revoked;
pub mod semantic;
mod settings;
pub use settings::ClusterSettings;
pub mod slots;
pub mod tickets;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adam_actors::SessionRegistryHandle;
use adam_actors::semantic_cache::{SemanticCacheHandle, SemanticTier};
use anyhow::Context;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};
use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;
use tokio::sync::oneshot;

/// Why a cluster call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis refused or did not answer.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered too slowly.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The node holding a session did not answer a control request.
    #[error("node {0} did not answer")]
    NoAnswer(String),
    /// Redis failed moments ago; it is not asked again before [`RETRY_AFTER`].
    #[error("redis is down (retrying shortly)")]
    Down,
    /// The subscription to other nodes' messages ended (Redis went away).
    #[error("subscription to redis closed")]
    Closed,
    /// A message between nodes could not be read or written.
    #[error("malformed cluster message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl ClusterError {
    /// True when Redis could not be reached (rather than refusing a command).
    fn is_outage(&self) -> bool {
        match self {
            ClusterError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.is_timeout()
            }
            ClusterError::Timeout(_) | ClusterError::Down | ClusterError::Closed => true,
            ClusterError::NoAnswer(_) | ClusterError::Malformed(_) => false,
        }
    }
}

/// Redis series in `/metrics`.
#[derive(Clone, Debug)]
struct RedisMetrics {
    errors: IntCounterVec,
    duration: HistogramVec,
    up: IntGauge,
    control: IntCounterVec,
}

impl RedisMetrics {
    fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let errors = IntCounterVec::new(
            Opts::new(
                "redis_errors_total",
                "Redis calls that failed or timed out, by operation",
            ),
            &["op"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("redis_command_duration_seconds", "Redis call latency").buckets(
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
            ),
            &["op"],
        )?;
        let up = IntGauge::new("redis_up", "1 while the last Redis call succeeded")?;
        let control = IntCounterVec::new(
            Opts::new(
                "cluster_control_requests_total",
                "Requests sent to the node holding a session, by command and outcome",
            ),
            &["command", "outcome"],
        )?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(control.clone()))?;
        Ok(Self {
            errors,
            duration,
            up,
            control,
        })
    }
}

/// The Redis side of a cluster node.
pub(crate) struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    namespace: String,
    node_id: String,
    metrics: RedisMetrics,
    healthy: AtomicBool,
    /// When the last call failed: while Redis is down, calls fail at once instead of
    /// each waiting for a connection attempt.
    failed_at: Mutex<Option<Instant>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<control::Outcome>>>,
    /// Sessions this node has put in the directory.
    owned: Mutex<HashSet<String>>,
    /// The concurrent-session slot each live session of this node holds.
    slots: Mutex<HashMap<String, String>>,
    next_request: AtomicU64,
    request_timeout: Duration,
    session_ttl: Duration,
    semantic_ttl: Duration,
    semantic_per_tenant: usize,
}

/// Longest wait for one Redis call before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// After a failure, calls fail at once for this long; then one call tries Redis again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Redis {
    /// `namespace:part`.
    fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.namespace)
    }

    /// Runs one Redis call with a timeout, timing it and tracking Redis health.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, ClusterError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.recently_failed() {
            self.metrics.errors.with_label_values(&[op]).inc();
            return Err(ClusterError::Down);
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ClusterError::Redis(e)),
            Err(_) => Err(ClusterError::Timeout(CALL_TIMEOUT)),
        };
        self.metrics
            .duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => self.mark_up(),
            Err(e) if e.is_outage() => self.mark_down(op, e),
            // Redis answered, with an error: a defect of ours, not an outage.
            Err(e) => {
                self.metrics.errors.with_label_values(&[op]).inc();
                tracing::error!(op, error = %e, "redis refused a command");
            }
        }
        result
    }

    /// True while failing fast; claims the retry for the caller once `RETRY_AFTER` passed.
    fn recently_failed(&self) -> bool {
        let mut failed_at = self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        match *failed_at {
            Some(at) if at.elapsed() < RETRY_AFTER => true,
            Some(_) => {
                // This caller probes; others keep failing fast until it reports.
                *failed_at = Some(Instant::now());
                false
            }
            None => false,
        }
    }

    fn mark_up(&self) {
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.up.set(1);
        if !self.healthy.swap(true, Ordering::SeqCst) {
            tracing::info!("redis reachable: cluster features are back");
        }
    }

    fn mark_down(&self, op: &'static str, error: &ClusterError) {
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.metrics.errors.with_label_values(&[op]).inc();
        self.metrics.up.set(0);
        // One warning per outage, not one per request.
        if self.healthy.swap(false, Ordering::SeqCst) {
            tracing::warn!(op, %error, "redis unavailable: this node carries on alone (rate limits per node, no cross-node control)");
        } else {
            tracing::debug!(op, %error, "redis call failed");
        }
    }
}

/// This node's place in the deployment. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    node_id: Arc<str>,
    redis: Option<Arc<Redis>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("redis", &self.redis.is_some())
            .finish()
    }
}

impl Cluster {
    /// A node alone (no Redis).
    fn single(node_id: &str) -> Self {
        Self {
            node_id: node_id.into(),
            redis: None,
        }
    }

    /// Sets up the Redis client when `cluster.redis_url` is set. Nothing connects yet:
    /// a node starts even while Redis is down.
    pub fn new(
        c: &ClusterSettings,
        cache: &crate::realtime::CacheSettings,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let node_id = if c.node_id.is_empty() {
            format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
        } else {
            c.node_id.clone()
        };
        let Some(url) = &c.redis_url else {
            return Ok(Self::single(&node_id));
        };
        let client = redis::Client::open(url.expose_secret())
            .context("cluster.redis_url is not a valid Redis URL")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .context("setting up the Redis connection")?;
        let metrics = RedisMetrics::new(registry).context("registering Redis metrics")?;
        tracing::info!(
            node_id,
            namespace = c.namespace,
            "cluster mode: sharing Redis"
        );
        Ok(Self {
            node_id: node_id.as_str().into(),
            redis: Some(Arc::new(Redis {
                client,
                conn,
                namespace: c.namespace.clone(),
                node_id,
                metrics,
                healthy: AtomicBool::new(true),
                failed_at: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
                owned: Mutex::new(HashSet::new()),
                slots: Mutex::new(HashMap::new()),
                next_request: AtomicU64::new(1),
                request_timeout: Duration::from_millis(c.request_timeout_ms),
                session_ttl: Duration::from_secs(c.session_ttl_secs),
                semantic_ttl: Duration::from_secs(cache.semantic_ttl_secs),
                semantic_per_tenant: cache.semantic_per_tenant,
            })),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// True when nodes share Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// The shared semantic-cache tier, when there is one.
    pub fn semantic_tier(&self) -> Option<Arc<dyn SemanticTier>> {
        self.redis
            .as_ref()
            .map(|r| Arc::new(semantic::RedisTier::new(r.clone())) as Arc<dyn SemanticTier>)
    }

    /// Starts the background work of a shared node: listening for other nodes' requests
    /// and cache changes, and keeping this node's sessions in the directory.
    pub fn start(
        &self,
        registry: SessionRegistryHandle,
        semantic: SemanticCacheHandle,
    ) -> ClusterTasks {
        let Some(redis) = &self.redis else {
            return ClusterTasks::default();
        };
        let listener = tokio::spawn(control::listen(redis.clone(), registry.clone(), semantic));
        let directory = tokio::spawn(directory::keep(redis.clone(), registry));
        ClusterTasks {
            redis: Some(redis.clone()),
            tasks: vec![listener, directory],
        }
    }
}

/// The background tasks of [`Cluster::start`].
#[derive(Default)]
pub struct ClusterTasks {
    redis: Option<Arc<Redis>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ClusterTasks {
    /// Stops listening and takes this node's sessions out of the directory.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(redis) = self.redis {
            directory::release_all(&redis).await;
        }
    }
}
