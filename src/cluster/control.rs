//! Control between nodes over Redis pub/sub: each node listens on `{namespace}:node:{id}`
//! for requests about its sessions (end, inspect) and for the replies to its own
//! requests, and on `{namespace}:cache` for other nodes' semantic-cache changes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use adam_actors::SessionRegistryHandle;
use adam_actors::semantic_cache::SemanticCacheHandle;
use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::semantic::{self, CacheEvent};
use super::{Cluster, ClusterError, Redis};

/// What one node asks another about a session it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// End the session; its customer's socket closes with `code`.
    End {
        /// Id of the session it concerns.
        session_id: String,
        /// Why (shown to the customer).
        reason: String,
        /// WebSocket close code.
        code: u16,
    },
    /// Describe the live session.
    Inspect {
        /// Id of the session it concerns.
        session_id: String,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::End { .. } => "end",
            Command::Inspect { .. } => "inspect",
        }
    }
}

/// What the holding node answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The session is not live there (any more).
    NotLive,
    /// The session was told to end.
    Ended,
    /// The live session's state.
    Live {
        /// Turns completed or cut.
        turns: u32,
        /// An answer is in progress.
        responding: bool,
    },
}

/// A message on a node's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum NodeMessage {
    Request {
        id: u64,
        from: String,
        #[serde(flatten)]
        command: Command,
    },
    Reply {
        id: u64,
        #[serde(flatten)]
        outcome: Outcome,
    },
}

fn node_channel(redis: &Redis, node: &str) -> String {
    redis.key(&format!("node:{node}"))
}

impl Cluster {
    /// Asks `node` to act on one of its sessions and waits for its answer
    /// (`cluster.request_timeout_ms`). A single node has no one to ask.
    pub async fn request(&self, node: &str, command: Command) -> Result<Outcome, ClusterError> {
        let Some(redis) = &self.redis else {
            return Err(ClusterError::NoAnswer(node.to_owned()));
        };
        let name = command.name();
        let result = ask(redis, node, command).await;
        let outcome = match &result {
            Ok(_) => "answered",
            Err(ClusterError::NoAnswer(_)) => "no_answer",
            Err(_) => "redis_error",
        };
        redis
            .metrics
            .control
            .with_label_values(&[name, outcome])
            .inc();
        result
    }
}

async fn ask(redis: &Arc<Redis>, node: &str, command: Command) -> Result<Outcome, ClusterError> {
    let id = redis.next_request.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    redis
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    let forget = || {
        redis
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    };
    let message = serde_json::to_string(&NodeMessage::Request {
        id,
        from: redis.node_id.clone(),
        command,
    })?;
    let channel = node_channel(redis, node);
    let receivers: Result<i64, _> = redis
        .call("control", |mut c| async move {
            c.publish(channel, message).await
        })
        .await;
    match receivers {
        // Nobody listens there: the node is gone.
        Ok(0) => {
            forget();
            return Err(ClusterError::NoAnswer(node.to_owned()));
        }
        Ok(_) => {}
        Err(e) => {
            forget();
            return Err(e);
        }
    }
    match tokio::time::timeout(redis.request_timeout, rx).await {
        Ok(Ok(outcome)) => Ok(outcome),
        _ => {
            forget();
            Err(ClusterError::NoAnswer(node.to_owned()))
        }
    }
}

/// Listens on this node's channel and the cache channel until aborted, reconnecting
/// with backoff while Redis is away. Each (re)connection reloads the semantic cache.
pub(super) async fn listen(
    redis: Arc<Redis>,
    registry: SessionRegistryHandle,
    semantic: SemanticCacheHandle,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen_once(&redis, &registry, &semantic).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => redis.mark_down("subscribe", &e),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(
    redis: &Arc<Redis>,
    registry: &SessionRegistryHandle,
    semantic: &SemanticCacheHandle,
) -> Result<(), ClusterError> {
    let mut pubsub = tokio::time::timeout(super::CALL_TIMEOUT, redis.client.get_async_pubsub())
        .await
        .map_err(|_| ClusterError::Timeout(super::CALL_TIMEOUT))??;
    let own = node_channel(redis, &redis.node_id);
    let cache = redis.key("cache");
    pubsub.subscribe(&own).await?;
    pubsub.subscribe(&cache).await?;
    redis.mark_up();
    // Redis may have lost its data while away: this node's sessions go back into the
    // directory now rather than at the next refresh.
    super::directory::refresh(redis, registry).await;
    // Subscribed first, so no change made while loading is missed.
    semantic::reload(redis, semantic).await;
    tracing::info!(channel = own, "listening for other nodes");
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        if msg.get_channel_name() == cache {
            match serde_json::from_str::<CacheEvent>(&payload) {
                Ok(event) => semantic::apply(redis, semantic, event),
                Err(e) => tracing::warn!(error = %e, "unreadable cache event"),
            }
            continue;
        }
        match serde_json::from_str::<NodeMessage>(&payload) {
            Ok(NodeMessage::Request { id, from, command }) => {
                let (redis, registry) = (redis.clone(), registry.clone());
                tokio::spawn(async move { answer(&redis, &registry, id, &from, command).await });
            }
            Ok(NodeMessage::Reply { id, outcome }) => {
                let waiting = redis
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(tx) = waiting {
                    let _ = tx.send(outcome);
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable node message"),
        }
    }
    Err(ClusterError::Closed)
}

/// Carries out another node's request on a local session and replies.
async fn answer(
    redis: &Redis,
    registry: &SessionRegistryHandle,
    id: u64,
    from: &str,
    command: Command,
) {
    let outcome = match command {
        Command::End {
            session_id,
            reason,
            code,
        } => match registry.get(&session_id).await {
            Some(session) => {
                tracing::info!(
                    session_id,
                    from,
                    "ending a session at another node's request"
                );
                session.end(&reason, code);
                Outcome::Ended
            }
            None => Outcome::NotLive,
        },
        Command::Inspect { session_id } => match registry.get(&session_id).await {
            Some(session) => match session.snapshot().await {
                Some(s) => Outcome::Live {
                    turns: s.turns,
                    responding: s.responding,
                },
                None => Outcome::NotLive,
            },
            None => Outcome::NotLive,
        },
    };
    let Ok(message) = serde_json::to_string(&NodeMessage::Reply { id, outcome }) else {
        return;
    };
    let channel = node_channel(redis, from);
    let _ = redis
        .call("control", |mut c| async move {
            c.publish::<_, _, i64>(channel, message).await
        })
        .await;
}
