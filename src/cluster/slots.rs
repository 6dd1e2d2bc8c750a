//! Concurrent-session slots shared by every node: `{namespace}:slots:{key}` is a sorted
//! set of session ids scored by when their lease ends. A ticket reserves a short lease;
//! the session, once it runs, holds it for the directory's TTL and its node renews it
//! with the directory ([`super::directory`]); a session that ends gives it back. A node
//! that dies leaves leases that simply run out.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Cluster, ClusterError};

/// KEYS[1]: the set. ARGV: member, limit, now (ms), lease end (ms). Drops leases that
/// ended, then adds the member when it already holds a lease or the set is below the
/// limit. Returns 1 when the member holds a lease afterwards.
const RESERVE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESERVE));

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Cluster {
    /// Reserves one of `limit` slots of `key` for `session_id` for `lease`. `Ok(None)`
    /// without Redis (the caller counts on this node).
    pub async fn reserve_slot(
        &self,
        key: &str,
        session_id: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Option<bool>, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let set = redis.key(&format!("slots:{key}"));
        let now = now_ms();
        let until = now + lease.as_millis() as u64;
        let member = session_id.to_owned();
        let granted: i64 = redis
            .call("slots", |mut c| async move {
                SCRIPT
                    .key(set)
                    .arg(member)
                    .arg(limit)
                    .arg(now)
                    .arg(until)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Some(granted == 1))
    }

    /// The session of a reserved slot is running: its node holds the lease from now on
    /// (renewed with the directory) until [`Cluster::release_slot`].
    pub async fn hold_slot(&self, key: &str, session_id: &str) {
        let Some(redis) = &self.redis else { return };
        redis
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session_id.to_owned(), key.to_owned());
        let set = redis.key(&format!("slots:{key}"));
        let until = now_ms() + redis.session_ttl.as_millis() as u64;
        let member = session_id.to_owned();
        let _ = redis
            .call("slots", |mut c| async move {
                redis::pipe()
                    .zadd(&set, member, until)
                    .ignore()
                    .pexpire_at(&set, until as i64)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
    }

    /// Gives a session's slot back (best effort: an unreleased lease runs out).
    pub async fn release_slot(&self, key: &str, session_id: &str) {
        let Some(redis) = &self.redis else { return };
        redis
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
        let set = redis.key(&format!("slots:{key}"));
        let member = session_id.to_owned();
        let _ = redis
            .call("slots", |mut c| async move {
                redis::cmd("ZREM")
                    .arg(set)
                    .arg(member)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
    }
}

/// Renews the leases of this node's live sessions (with the directory's refresh).
pub(super) fn renew(redis: &super::Redis, live: &[String], pipe: &mut redis::Pipeline) {
    let slots = redis.slots.lock().unwrap_or_else(|e| e.into_inner());
    let until = now_ms() + redis.session_ttl.as_millis() as u64;
    for id in live {
        if let Some(key) = slots.get(id) {
            let set = redis.key(&format!("slots:{key}"));
            pipe.zadd(&set, id, until)
                .ignore()
                .pexpire_at(&set, until as i64)
                .ignore();
        }
    }
}
