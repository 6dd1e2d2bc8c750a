//! `[auth]`: token signing and lifetimes, and the failed-login throttle.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing key; from `ADAM__AUTH__JWT_SECRET` only.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<SecretString>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Access token lifetime, seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime from login (absolute), seconds.
    pub refresh_ttl_secs: i64,
    /// Clock skew tolerated, seconds.
    pub leeway_secs: i64,
    /// Failures per (account, IP) before throttling.
    pub login_max_failures: u32,
    /// Failures per IP before throttling.
    pub login_max_failures_per_ip: u32,
    /// Window over which failures are counted, seconds.
    pub login_window_secs: i64,
    /// Longest throttle, seconds.
    pub login_max_lockout_secs: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "adam".into(),
            audience: "adam-api".into(),
            access_ttl_secs: 30 * 60,
            refresh_ttl_secs: 7 * 24 * 3600,
            leeway_secs: 5,
            login_max_failures: 5,
            login_max_failures_per_ip: 50,
            login_window_secs: 900,
            login_max_lockout_secs: 900,
        }
    }
}

impl AuthSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.access_ttl_secs < 60 {
            return Err(("auth.access_ttl_secs", "must be at least 60".into()));
        }
        if self.refresh_ttl_secs <= self.access_ttl_secs {
            return Err((
                "auth.refresh_ttl_secs",
                "must be longer than auth.access_ttl_secs".into(),
            ));
        }
        if !(0..=60).contains(&self.leeway_secs) {
            return Err(("auth.leeway_secs", "must be between 0 and 60".into()));
        }
        for (key, value) in [
            (
                "auth.login_max_failures",
                i64::from(self.login_max_failures),
            ),
            (
                "auth.login_max_failures_per_ip",
                i64::from(self.login_max_failures_per_ip),
            ),
            ("auth.login_window_secs", self.login_window_secs),
            ("auth.login_max_lockout_secs", self.login_max_lockout_secs),
        ] {
            if value < 1 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < 32
        {
            return Err((
                "auth.jwt_secret",
                "must be at least 32 bytes (use e.g. `openssl rand -hex 32`)".into(),
            ));
        }
        Ok(())
    }
}
