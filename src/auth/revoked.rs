//! Access tokens ended before their expiry (logout): a deny-list of token ids (`jti`),
//! each kept until its token would have expired anyway. This node keeps its own list;
//! nodes sharing Redis also write each id there (with that expiry as its TTL) and ask
//! Redis for ids they do not hold, so a logout on one node holds on every node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;
use crate::cluster::Cluster;

/// Entries past which a revocation first sweeps out the expired ones.
const SWEEP_THRESHOLD: usize = 10_000;

/// The deny-list of access-token ids.
#[derive(Debug)]
pub struct RevokedTokens {
    clock: Clock,
    cluster: Cluster,
    /// jti → unix second from which the token is dead anyway (its `exp` plus the leeway).
    local: Mutex<HashMap<String, i64>>,
}

impl RevokedTokens {
    /// An empty list.
    pub fn new(clock: Clock, cluster: Cluster) -> Self {
        Self {
            clock,
            cluster,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Denies the token `jti` until `until` (unix seconds), on this node and, when nodes
    /// share Redis, on every node (best effort: a Redis failure is logged and counted).
    pub async fn revoke(&self, jti: &str, until: i64) {
        let now = self.clock.now();
        if until <= now {
            return;
        }
        {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local.len() >= SWEEP_THRESHOLD {
                local.retain(|_, dead_at| *dead_at > now);
            }
            local.insert(jti.to_owned(), until);
        }
        let ttl = Duration::from_secs((until - now) as u64);
        let _ = self.cluster.revoke_token(jti, ttl).await;
    }

    /// True when `jti` was revoked and has not expired since. While Redis is down, only
    /// this node's own revocations are known.
    pub async fn is_revoked(&self, jti: &str) -> bool {
        let now = self.clock.now();
        let here = self
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(jti)
            .is_some_and(|dead_at| *dead_at > now);
        if here {
            return true;
        }
        matches!(self.cluster.is_token_revoked(jti).await, Ok(Some(true)))
    }

    /// Forgets entries whose tokens have expired (called every minute by the sweeper);
    /// returns how many are left.
    pub fn prune(&self) -> usize {
        let now = self.clock.now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local.retain(|_, dead_at| *dead_at > now);
        local.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(clock: &Clock) -> RevokedTokens {
        let cluster = Cluster::new(
            &Default::default(),
            &Default::default(),
            &prometheus::Registry::new(),
        )
        .expect("a single node");
        RevokedTokens::new(clock.clone(), cluster)
    }

    #[tokio::test]
    async fn a_revoked_id_is_denied_until_its_expiry_then_forgotten() {
        let clock = Clock::adjustable();
        let revoked = list(&clock);
        let now = clock.now();
        revoked.revoke("a", now + 60).await;
        revoked.revoke("b", now + 600).await;
        revoked.revoke("already-dead", now).await;
        assert!(revoked.is_revoked("a").await);
        assert!(revoked.is_revoked("b").await);
        assert!(!revoked.is_revoked("c").await);
        assert!(!revoked.is_revoked("already-dead").await);
        assert_eq!(revoked.prune(), 2);

        clock.advance(60);
        assert!(!revoked.is_revoked("a").await, "expired anyway");
        assert_eq!(revoked.prune(), 1, "expired entries do not accumulate");
        clock.advance(540);
        assert_eq!(revoked.prune(), 0);
    }
}
