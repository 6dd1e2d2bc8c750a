//! Rate-limit counters shared by every node: one GCRA bucket per key in Redis, checked
//! and updated by a Lua script in one round trip (the same quota semantics as the
//! node-local governor limiters: `burst` at once, refilled at `per_minute`).

use std::sync::LazyLock;
use std::time::Duration;

use super::{Cluster, ClusterError};

/// KEYS[1]: the bucket. ARGV[1]: microseconds between requests at the sustained rate;
/// ARGV[2]: burst. Returns 0 when the request is allowed (and counted), else the
/// microseconds until it would be. Redis's own clock is used, so nodes' clocks may differ.
const GCRA: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return math.ceil(allow_at - now)
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

/// A shared bucket's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// Refused; retry after this long.
    Wait(Duration),
}

impl Cluster {
    /// Takes one request from the shared bucket `scope:key`. `Ok(None)` when there is no
    /// Redis (the caller uses its local limiter); an error when Redis failed.
    pub async fn check_rate(
        &self,
        scope: &str,
        key: &str,
        per_minute: u32,
        burst: u32,
    ) -> Result<Option<Verdict>, ClusterError> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let bucket = redis.key(&format!("rate:{scope}:{key}"));
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        let burst = burst.max(1);
        let wait_us: u64 = redis
            .call("rate_limit", |mut c| async move {
                SCRIPT
                    .key(bucket)
                    .arg(interval_us)
                    .arg(burst)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Some(if wait_us == 0 {
            Verdict::Allowed
        } else {
            Verdict::Wait(Duration::from_micros(wait_us))
        }))
    }
}
