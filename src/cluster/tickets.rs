//! Session tickets any node can redeem: `{namespace}:ticket:{ticket}` holds the grant
//! until it is used once (GETDEL) or expires, so a load balancer may send the WebSocket
//! or WebRTC offer to another node than the one that issued the ticket. That node then
//! holds the session's media: the session is sticky to it.

use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cluster, ClusterError};

impl Cluster {
    /// Shares a ticket's grant for `ttl`. `Ok(false)` without Redis.
    pub async fn put_ticket(
        &self,
        ticket: &str,
        grant: &impl Serialize,
        ttl: Duration,
    ) -> Result<bool, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(false);
        };
        let key = redis.key(&format!("ticket:{ticket}"));
        let value = serde_json::to_string(grant)?;
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        redis
            .call("ticket", |mut c| async move {
                c.pset_ex::<_, _, ()>(key, value, ttl_ms).await
            })
            .await?;
        Ok(true)
    }

    /// Takes a shared ticket's grant, once.
    pub async fn take_ticket<T: DeserializeOwned>(
        &self,
        ticket: &str,
    ) -> Result<Option<T>, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let key = redis.key(&format!("ticket:{ticket}"));
        let value: Option<String> = redis
            .call("ticket", |mut c| async move { c.get_del(key).await })
            .await?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    }
}
