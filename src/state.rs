//! [`AppState`]: the shared handles every request handler reaches.

use std::sync::Arc;

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenService;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::middleware::RateLimits;
use crate::settings::Settings;

/// Shared handles every request can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Database pool.
    pub db: Db,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Token issuing and verification.
    pub tokens: Arc<TokenService>,
    /// Failed-login throttle.
    pub login_throttle: Arc<LoginThrottle>,
    /// Request rate limits.
    pub rate_limits: Arc<RateLimits>,
    /// Per-dealership session admission (concurrent sessions, starts per client IP).
    pub quotas: Arc<crate::realtime::quota::Quotas>,
    /// Prometheus series.
    pub metrics: Metrics,
    /// Time source.
    pub clock: Clock,
    /// Live conversations.
    pub realtime: crate::realtime::Realtime,
    /// Outgoing email (queued here, sent by the outbox worker).
    pub email: crate::email::Mailer,
    /// Set once shutdown began: readiness is red and new sessions are refused.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// This node among the others (Redis), or alone.
    pub cluster: Cluster,
    /// Access tokens ended by logout before their expiry.
    pub revoked_tokens: Arc<crate::auth::revoked::RevokedTokens>,
}
