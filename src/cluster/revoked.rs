//! Revoked access tokens shared by every node: `{namespace}:revoked:{jti}`, set at logout
//! with the token's remaining lifetime as its TTL, so Redis forgets it when the token
//! would have expired anyway (see [`crate::auth::revoked`]).

use std::time::Duration;

use redis::AsyncCommands;

use super::{Cluster, ClusterError};

impl Cluster {
    /// Shares a revoked token id for `ttl`. `Ok(false)` without Redis.
    pub async fn revoke_token(&self, jti: &str, ttl: Duration) -> Result<bool, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(false);
        };
        let key = redis.key(&format!("revoked:{jti}"));
        let ttl_secs = ttl.as_secs().max(1);
        redis
            .call("revoked_token", |mut c| async move {
                c.set_ex::<_, _, ()>(key, 1, ttl_secs).await
            })
            .await?;
        Ok(true)
    }

    /// Whether a node revoked this token id. `Ok(None)` without Redis.
    pub async fn is_token_revoked(&self, jti: &str) -> Result<Option<bool>, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let key = redis.key(&format!("revoked:{jti}"));
        let found: bool = redis
            .call("revoked_token", |mut c| async move { c.exists(key).await })
            .await?;
        Ok(Some(found))
    }
}
