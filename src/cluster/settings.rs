//! `[cluster]`: several nodes behind a load balancer share PostgreSQL and Redis.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `[cluster]`: several nodes behind a load balancer share PostgreSQL and Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://[:password@]host:port[/db]` shared by every node, from
    /// `ADAM__CLUSTER__REDIS_URL` only (it may hold a password); unset: a single node.
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretString>,
    /// This node's name in the session directory (empty: generated at start).
    pub node_id: String,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    pub namespace: String,
    /// How long a node waits for another to answer a control request, ms.
    pub request_timeout_ms: u64,
    /// Lifetime of a session's directory entry, refreshed by its node while it lives, s.
    pub session_ttl_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            node_id: String::new(),
            namespace: "adam".into(),
            request_timeout_ms: 2000,
            session_ttl_secs: 30,
        }
    }
}

impl ClusterSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.redis_url
            && !url.expose_secret().starts_with("redis://")
        {
            return Err((
                "cluster.redis_url",
                "must start with redis:// (set ADAM__CLUSTER__REDIS_URL)".into(),
            ));
        }
        let name_ok = |s: &str| {
            s.len() <= 64
                && s.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        };
        if !name_ok(&self.node_id) {
            return Err((
                "cluster.node_id",
                "use at most 64 letters, digits, `-`, `_` or `.`".into(),
            ));
        }
        if self.namespace.is_empty() || !name_ok(&self.namespace) {
            return Err((
                "cluster.namespace",
                "use 1 to 64 letters, digits, `-`, `_` or `.`".into(),
            ));
        }
        if !(100..=60_000).contains(&self.request_timeout_ms) {
            return Err(("cluster.request_timeout_ms", "must be 100 to 60000".into()));
        }
        if !(3..=3600).contains(&self.session_ttl_secs) {
            return Err(("cluster.session_ttl_secs", "must be 3 to 3600".into()));
        }
        Ok(())
    }
}
