//! The session directory: `{namespace}:session:{id}` → the node holding that session's
//! media, with a TTL its node refreshes while the session lives, so a node that dies
//! leaves no entry behind for long.

use std::collections::HashSet;
use std::sync::Arc;

use adam_actors::SessionRegistryHandle;
use redis::AsyncCommands;

use super::{Cluster, ClusterError, Redis};

impl Cluster {
    /// Records that this node holds `session_id` (best effort: the directory task
    /// retries at its next round).
    pub async fn claim(&self, session_id: &str) {
        let Some(redis) = &self.redis else { return };
        redis
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session_id.to_owned());
        let key = redis.key(&format!("session:{session_id}"));
        let node = redis.node_id.clone();
        let ttl = redis.session_ttl.as_secs();
        let _ = redis
            .call("directory", |mut c| async move {
                c.set_ex::<_, _, ()>(key, node, ttl).await
            })
            .await;
    }

    /// The nodes holding these sessions (`None`: not live anywhere the directory knows).
    /// A single node answers from its own registry.
    pub async fn owners(
        &self,
        registry: &SessionRegistryHandle,
        session_ids: &[String],
    ) -> Result<Vec<Option<String>>, ClusterError> {
        if session_ids.is_empty() {
            return Ok(Vec::new());
        }
        let local: HashSet<String> = registry
            .ids()
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut owners: Vec<Option<String>> = session_ids
            .iter()
            .map(|id| local.contains(id).then(|| self.node_id.to_string()))
            .collect();
        let Some(redis) = &self.redis else {
            return Ok(owners);
        };
        let missing: Vec<usize> = (0..owners.len()).filter(|&i| owners[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(owners);
        }
        let keys: Vec<String> = missing
            .iter()
            .map(|&i| redis.key(&format!("session:{}", session_ids[i])))
            .collect();
        let found: Vec<Option<String>> = redis
            .call("directory", |mut c| async move {
                redis::cmd("MGET").arg(&keys).query_async(&mut c).await
            })
            .await?;
        for (i, node) in missing.into_iter().zip(found) {
            owners[i] = node;
        }
        Ok(owners)
    }

    /// The node holding one session, if it is live.
    pub async fn owner(
        &self,
        registry: &SessionRegistryHandle,
        session_id: &str,
    ) -> Result<Option<String>, ClusterError> {
        let owners = self.owners(registry, &[session_id.to_owned()]).await?;
        Ok(owners.into_iter().next().flatten())
    }
}

/// Every third of the TTL: refreshes the entries of this node's live sessions and
/// removes those of sessions that ended.
pub(super) async fn keep(redis: Arc<Redis>, registry: SessionRegistryHandle) {
    let mut tick = tokio::time::interval(redis.session_ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        refresh(&redis, &registry).await;
    }
}

/// Puts this node's live sessions in the directory (again) and takes ended ones out.
pub(super) async fn refresh(redis: &Redis, registry: &SessionRegistryHandle) {
    let Some(live) = registry.ids().await else {
        return;
    };
    let ended: Vec<String> = {
        let mut owned = redis.owned.lock().unwrap_or_else(|e| e.into_inner());
        let ended = owned
            .iter()
            .filter(|id| !live.contains(id))
            .cloned()
            .collect();
        *owned = live.iter().cloned().collect();
        ended
    };
    if live.is_empty() && ended.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for id in &live {
        pipe.set_ex(
            redis.key(&format!("session:{id}")),
            &redis.node_id,
            redis.session_ttl.as_secs(),
        )
        .ignore();
    }
    for id in &ended {
        pipe.del(redis.key(&format!("session:{id}"))).ignore();
    }
    super::slots::renew(redis, &live, &mut pipe);
    let _ = redis
        .call("directory", |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await;
}

/// Removes every entry this node made (shutdown).
pub(super) async fn release_all(redis: &Redis) {
    let keys: Vec<String> = redis
        .owned
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|id| redis.key(&format!("session:{id}")))
        .collect();
    if keys.is_empty() {
        return;
    }
    let _ = redis
        .call(
            "directory",
            |mut c| async move { c.del::<_, ()>(keys).await },
        )
        .await;
}
