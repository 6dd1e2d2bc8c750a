//! Shared embedding cache actor: query text → vector (quick_cache, S3-FIFO eviction).
//! Misses are embedded by the caller's task, never inside this actor's mailbox.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::metrics::ActorMetrics;
use crate::ports::{CancellationToken, Embedder, ProviderError};

/// Hit/miss counts and size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups answered.
    pub hits: u64,
    /// Lookups missed.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
}

/// What the actor is asked to do.
pub enum EmbeddingCacheMsg {
    /// Look a normalised text up.
    Get(String, RpcReplyPort<Option<Arc<[f32]>>>),
    /// Store a vector.
    Put(String, Arc<[f32]>),
    /// Counters.
    Stats(RpcReplyPort<CacheStats>),
}

/// The actor.
pub struct EmbeddingCache;

/// Its state.
pub struct EmbeddingCacheState {
    cache: quick_cache::unsync::Cache<String, Arc<[f32]>>,
    stats: CacheStats,
}

impl Actor for EmbeddingCache {
    type Msg = EmbeddingCacheMsg;
    type State = EmbeddingCacheState;
    type Arguments = usize;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        capacity: usize,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EmbeddingCacheState {
            cache: quick_cache::unsync::Cache::new(capacity.max(1)),
            stats: CacheStats::default(),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EmbeddingCacheMsg::Get(key, reply) => {
                let found = state.cache.get(&key).cloned();
                if found.is_some() {
                    state.stats.hits += 1;
                } else {
                    state.stats.misses += 1;
                }
                let _ = reply.send(found);
            }
            EmbeddingCacheMsg::Put(key, vector) => state.cache.insert(key, vector),
            EmbeddingCacheMsg::Stats(reply) => {
                let mut stats = state.stats;
                stats.entries = state.cache.len() as u64;
                let _ = reply.send(stats);
            }
        }
        Ok(())
    }
}

/// Typed handle with timeouts.
#[derive(Clone)]
pub struct EmbeddingCacheHandle {
    actor: ActorRef<EmbeddingCacheMsg>,
    metrics: ActorMetrics,
}

const CALL_TIMEOUT: Duration = Duration::from_millis(500);

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl EmbeddingCacheHandle {
    /// Starts the shared cache with room for `capacity` vectors.
    pub async fn start(capacity: usize, metrics: ActorMetrics) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, EmbeddingCache, capacity).await?;
        Ok(Self { actor, metrics })
    }

    /// The cached vector of `text`, or embeds it with `embedder` and caches it.
    pub async fn get_or_embed(
        &self,
        text: &str,
        embedder: &dyn Embedder,
        cancel: CancellationToken,
    ) -> Result<Arc<[f32]>, ProviderError> {
        let key = normalise(text);
        let cached = crate::rpc::ask(
            &self.actor,
            |reply| EmbeddingCacheMsg::Get(key.clone(), reply),
            CALL_TIMEOUT,
        )
        .await
        .flatten();
        if let Some(v) = cached {
            self.metrics
                .cache_lookups
                .with_label_values(&["embedding", "hit"])
                .inc();
            return Ok(v);
        }
        self.metrics
            .cache_lookups
            .with_label_values(&["embedding", "miss"])
            .inc();
        let mut vectors = embedder.embed(vec![text.to_owned()], cancel).await?;
        let vector: Arc<[f32]> = vectors
            .pop()
            .ok_or_else(|| ProviderError::Rejected("no embedding returned".into()))?
            .into();
        let _ = self.actor.cast(EmbeddingCacheMsg::Put(key, vector.clone()));
        Ok(vector)
    }

    /// Hit/miss counters.
    pub async fn stats(&self) -> Option<CacheStats> {
        crate::rpc::ask(&self.actor, EmbeddingCacheMsg::Stats, CALL_TIMEOUT).await
    }

    /// Stops the actor.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}
