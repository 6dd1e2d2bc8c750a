//! Session admission per dealership: how many sessions it may hold at once (anonymous
//! visitors and signed-in users apart), how fast one client IP may start them, and its
//! monthly caps — so one client, or one dealership, can never take the node from the
//! others. Counted in Redis when nodes share it ([`crate::cluster::slots`],
//! [`crate::cluster::rate`]), else on this node (and on this node while Redis is down).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::error::ApiError;
use crate::cluster::rate::Verdict;
use crate::db::dealerships::Dealership;
use crate::db::usage;
use crate::limits::{DealershipLimits, LimitSettings};
use crate::middleware::{network, retry_after};
use crate::state::AppState;

/// A concurrent-session slot: which dealership's pool, and the session holding it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Slot {
    /// `{dealership}:anonymous` or `{dealership}:signed_in`.
    pub key: String,
    /// The session.
    pub session_id: String,
}

/// This node's counters.
#[derive(Default)]
pub struct Quotas {
    /// Slot key → session → lease end (`None`: the session runs).
    leases: Mutex<HashMap<String, HashMap<String, Option<Instant>>>>,
    /// New sessions per client IP, one limiter per distinct per-minute quota.
    starts: Mutex<HashMap<u32, Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").finish_non_exhaustive()
    }
}

impl Quotas {
    /// Takes one session start of `per_minute` from `key` on this node; the wait when
    /// refused.
    fn start_locally(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        let limiter = {
            let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            starts
                .entry(per_minute)
                .or_insert_with(|| {
                    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
                    Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
                })
                .clone()
        };
        let now = DefaultClock::default().now();
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(now))
    }

    /// Reserves a slot of `key` for `lease` unless `limit` sessions hold one.
    fn reserve_locally(&self, slot: &Slot, limit: u32, lease: Duration) -> bool {
        let now = Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let holders = leases.entry(slot.key.clone()).or_default();
        holders.retain(|_, until| until.is_none_or(|t| t > now));
        if holders.len() >= limit as usize && !holders.contains_key(&slot.session_id) {
            return false;
        }
        holders.insert(slot.session_id.clone(), Some(now + lease));
        true
    }

    /// Live sessions (and unexpired reservations) of `key` on this node.
    pub fn held(&self, key: &str) -> usize {
        let now = Instant::now();
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.get(key).map_or(0, |h| {
            h.values().filter(|u| u.is_none_or(|t| t > now)).count()
        })
    }

    /// Drops buckets and pools that are empty again (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for holders in leases.values_mut() {
            holders.retain(|_, until| until.is_none_or(|t| t > now));
        }
        leases.retain(|_, h| !h.is_empty());
        drop(leases);
        for limiter in self
            .starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limits in force for a dealership.
pub fn limits_of(state: &AppState, dealership: &Dealership) -> LimitSettings {
    DealershipLimits::from_json(&dealership.limits).over(&state.settings.limits)
}

/// Decides whether `ip` may start a session at `dealership`; on success the returned
/// slot is reserved for as long as the ticket lives.
pub async fn admit(
    state: &AppState,
    dealership: &Dealership,
    anonymous: bool,
    ip: IpAddr,
    session_id: &str,
) -> Result<Slot, ApiError> {
    let limits = limits_of(state, dealership);
    let refused = |what: &str| {
        state.metrics.rate_limited.with_label_values(&[what]).inc();
    };
    // How fast one client starts sessions.
    let per_minute = limits.sessions_per_minute_per_ip.max(1);
    let key = format!("{}:{}", dealership.id, network(ip));
    let verdict = match state
        .cluster
        .check_rate("session_start", &key, per_minute, per_minute)
        .await
    {
        Ok(Some(Verdict::Allowed)) => Ok(()),
        Ok(Some(Verdict::Wait(wait))) => Err(wait),
        Ok(None) | Err(_) => state.quotas.start_locally(&key, per_minute),
    };
    if let Err(wait) = verdict {
        refused("session_start");
        return Err(ApiError::TooManyRequests {
            retry_after: retry_after(wait),
        });
    }
    if over_cap(state, &dealership.id, &limits).await? {
        refused("usage_cap");
        return Err(ApiError::UsageCapReached);
    }
    // How many at once.
    let (limit, pool) = if anonymous {
        (limits.anonymous_sessions, "anonymous")
    } else {
        (limits.signed_in_sessions, "signed_in")
    };
    let slot = Slot {
        key: format!("{}:{pool}", dealership.id),
        session_id: session_id.to_owned(),
    };
    let lease = state.realtime.tickets.ttl() + Duration::from_secs(5);
    let granted = match state
        .cluster
        .reserve_slot(&slot.key, session_id, limit, lease)
        .await
    {
        Ok(Some(granted)) => granted,
        Ok(None) | Err(_) => state.quotas.reserve_locally(&slot, limit, lease),
    };
    if !granted {
        refused("concurrent_sessions");
        return Err(ApiError::QuotaExceeded { limit });
    }
    Ok(slot)
}

/// What a session says before closing when its dealership reached a monthly cap.
pub const BUSY_NOTICE: &str = "I'm sorry, we're very busy right now and can't take more \
conversations. Please try again later, or contact the dealership directly.";

/// True when the dealership has reached one of its monthly caps (`false` when it has
/// none, or the database cannot tell: a session is not refused for an outage).
pub async fn cap_reached(state: &AppState, dealership_id: &str, limits: &LimitSettings) -> bool {
    over_cap(state, dealership_id, limits)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "monthly usage unknown; the session goes ahead");
            false
        })
}

/// Whether this month's usage (UTC) reached one of the dealership's monthly caps; no
/// query when it has none.
async fn over_cap(
    state: &AppState,
    dealership_id: &str,
    limits: &LimitSettings,
) -> Result<bool, sqlx::Error> {
    if limits.monthly_turns == 0 && limits.monthly_audio_minutes == 0 {
        return Ok(false);
    }
    let month = usage::month_start(state.clock.now());
    let (turns, audio_seconds) = usage::since(&state.db, dealership_id, &month).await?;
    Ok(
        (limits.monthly_turns > 0 && turns.max(0) as u64 >= limits.monthly_turns)
            || (limits.monthly_audio_minutes > 0
                && audio_seconds / 60.0 >= limits.monthly_audio_minutes as f64),
    )
}

/// The session of `slot` runs: it holds the slot until [`release`].
pub async fn hold(state: &AppState, slot: &Slot) {
    {
        let mut leases = state
            .quotas
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(holders) = leases.get_mut(&slot.key) {
            holders.insert(slot.session_id.clone(), None);
        }
    }
    state.cluster.hold_slot(&slot.key, &slot.session_id).await;
}

/// Gives the slot back (the session ended, or never started).
pub async fn release(state: &AppState, slot: &Slot) {
    {
        let mut leases = state
            .quotas
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(holders) = leases.get_mut(&slot.key) {
            holders.remove(&slot.session_id);
        }
    }
    state
        .cluster
        .release_slot(&slot.key, &slot.session_id)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_refuses_past_its_limit_until_a_session_leaves() {
        let quotas = Quotas::default();
        let slot = |n: u32| Slot {
            key: "d1:anonymous".into(),
            session_id: format!("s{n}"),
        };
        let lease = Duration::from_secs(60);
        assert!(quotas.reserve_locally(&slot(1), 2, lease));
        assert!(quotas.reserve_locally(&slot(2), 2, lease));
        assert!(!quotas.reserve_locally(&slot(3), 2, lease));
        // Another pool is not affected.
        let other = Slot {
            key: "d2:anonymous".into(),
            session_id: "s9".into(),
        };
        assert!(quotas.reserve_locally(&other, 2, lease));
        // An expired reservation frees its place.
        assert!(quotas.reserve_locally(&slot(1), 2, Duration::ZERO));
        assert!(quotas.reserve_locally(&slot(3), 2, lease));
        assert_eq!(quotas.held("d1:anonymous"), 2);
    }

    #[test]
    fn session_starts_are_limited_per_key() {
        let quotas = Quotas::default();
        for _ in 0..3 {
            assert!(quotas.start_locally("d1:1.2.3.4", 3).is_ok());
        }
        assert!(quotas.start_locally("d1:1.2.3.4", 3).is_err());
        assert!(quotas.start_locally("d1:1.2.3.5", 3).is_ok());
        assert!(quotas.start_locally("d2:1.2.3.4", 3).is_ok());
    }
}
