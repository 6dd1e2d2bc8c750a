//! The shared semantic-cache tier: every answer a node stores goes to a per-dealership
//! Redis hash `{namespace}:semantic:{dealership}` (expiring with the cache TTL) and is
//! announced on `{namespace}:cache`, so every node's local cache holds it; a node
//! (re)connecting loads the hashes. Clears go the same way, so they are cluster-wide.

use std::sync::Arc;

use adam_actors::semantic_cache::{SemanticCacheHandle, SemanticTier, SharedAnswer, unix_ms};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::Redis;

/// A change to the semantic cache, announced to every node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum CacheEvent {
    /// A node stored an answer.
    Stored {
        /// The storing node (it already has the answer).
        from: String,
        /// The answer.
        answer: SharedAnswer,
    },
    /// A node cleared one dealership's answers (`None`: every dealership's).
    Cleared {
        /// The clearing node.
        from: String,
        /// Id of the dealership (tenant) it belongs to.
        tenant: Option<String>,
    },
}

/// [`SemanticTier`] on Redis.
pub(super) struct RedisTier {
    redis: Arc<Redis>,
}

impl RedisTier {
    pub(super) fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }
}

fn hash_key(redis: &Redis, tenant: &str) -> String {
    redis.key(&format!("semantic:{tenant}"))
}

impl SemanticTier for RedisTier {
    fn stored(&self, answer: SharedAnswer) {
        let redis = self.redis.clone();
        tokio::spawn(async move {
            let key = hash_key(&redis, &answer.tenant);
            let field = answer.question.trim().to_lowercase();
            let ttl = redis.semantic_ttl.as_secs().max(1) as i64;
            let Ok(entry) = serde_json::to_string(&answer) else {
                return;
            };
            let Ok(message) = serde_json::to_string(&CacheEvent::Stored {
                from: redis.node_id.clone(),
                answer,
            }) else {
                return;
            };
            let channel = redis.key("cache");
            let mut pipe = redis::pipe();
            pipe.hset(&key, field, entry)
                .ignore()
                .expire(&key, ttl)
                .ignore()
                .publish(channel, message)
                .ignore();
            let _ = redis
                .call("semantic_store", |mut c| async move {
                    pipe.query_async::<()>(&mut c).await
                })
                .await;
        });
    }

    fn cleared(&self, tenant: Option<&str>) {
        let redis = self.redis.clone();
        let tenant = tenant.map(str::to_owned);
        tokio::spawn(async move {
            let keys = match &tenant {
                Some(t) => vec![hash_key(&redis, t)],
                None => match tenant_keys(&redis).await {
                    Ok(keys) => keys,
                    Err(()) => return,
                },
            };
            let Ok(message) = serde_json::to_string(&CacheEvent::Cleared {
                from: redis.node_id.clone(),
                tenant,
            }) else {
                return;
            };
            let channel = redis.key("cache");
            let mut pipe = redis::pipe();
            for key in keys {
                pipe.del(key).ignore();
            }
            pipe.publish(channel, message).ignore();
            let _ = redis
                .call("semantic_clear", |mut c| async move {
                    pipe.query_async::<()>(&mut c).await
                })
                .await;
        });
    }
}

/// Every dealership hash of this namespace.
async fn tenant_keys(redis: &Redis) -> Result<Vec<String>, ()> {
    let pattern = redis.key("semantic:*");
    redis
        .call("semantic_load", |mut c| async move {
            let mut keys = Vec::new();
            let mut iter = c.scan_match::<_, String>(pattern).await?;
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            Ok(keys)
        })
        .await
        .map_err(|_| ())
}

/// Applies another node's change to this node's cache.
pub(super) fn apply(redis: &Redis, semantic: &SemanticCacheHandle, event: CacheEvent) {
    match event {
        CacheEvent::Stored { from, answer } if from != redis.node_id => {
            semantic.store_replica(answer);
        }
        CacheEvent::Cleared { from, tenant } if from != redis.node_id => {
            semantic.clear_replica(tenant.as_deref());
        }
        _ => {}
    }
}

/// Replaces this node's cache with the shared tier's answers (newest first, at most
/// `cache.semantic_per_tenant` per dealership, none past the TTL).
pub(super) async fn reload(redis: &Redis, semantic: &SemanticCacheHandle) {
    let Ok(keys) = tenant_keys(redis).await else {
        return;
    };
    semantic.clear_replica(None);
    let oldest = unix_ms().saturating_sub(redis.semantic_ttl.as_millis() as u64);
    let mut loaded = 0usize;
    for key in keys {
        let Ok(entries) = redis
            .call("semantic_load", |mut c| async move {
                c.hvals::<_, Vec<String>>(key).await
            })
            .await
        else {
            return;
        };
        let mut answers: Vec<SharedAnswer> = entries
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .filter(|a: &SharedAnswer| a.stored_at_ms >= oldest)
            .collect();
        answers.sort_by_key(|a| std::cmp::Reverse(a.stored_at_ms));
        answers.truncate(redis.semantic_per_tenant);
        // Oldest first, so the local per-dealership eviction keeps the newest.
        for answer in answers.into_iter().rev() {
            semantic.store_replica(answer);
            loaded += 1;
        }
    }
    if loaded > 0 {
        tracing::info!(
            answers = loaded,
            "semantic cache loaded from the shared tier"
        );
    }
}
