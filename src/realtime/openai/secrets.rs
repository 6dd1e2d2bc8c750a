//! `POST /v1/realtime/client_secrets`: ephemeral client secrets (`ek_…`), as the OpenAI
//! API mints them for browsers. A server holding a dealership API key (or a signed-in
//! user) asks for one with the session's configuration; the browser opens `/v1/realtime`
//! with it, once, before it expires. Kept on this node, and in Redis when nodes share it,
//! so whichever node the browser reaches can redeem it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::state::AppState;

/// What every client secret starts with.
pub const SECRET_PREFIX: &str = "ek_";
/// Lifetime when the request names none (the API's default).
pub const DEFAULT_TTL_SECS: u64 = 600;
/// Allowed lifetimes (the API's range).
pub const TTL_RANGE: (u64, u64) = (10, 7_200);
/// Secrets one node holds at most; older ones are dropped first beyond that.
const MAX_HELD: usize = 100_000;

/// What a client secret lets its holder open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSecret {
    /// The dealership the session talks to.
    pub dealership_id: String,
    /// The signed-in user who minted it, if not an API key.
    pub user_id: Option<String>,
    /// Browser origins allowed to redeem it.
    pub allowed_origins: Vec<String>,
    /// The `session` object of the request (applied when the session opens).
    pub session: Value,
    /// Unix seconds after which it opens nothing.
    pub expires_at: i64,
}

/// This node's unredeemed secrets.
#[derive(Debug, Default)]
pub struct Secrets {
    map: Mutex<HashMap<String, (ClientSecret, Instant)>>,
}

impl Secrets {
    /// Holds a new secret for `ttl`.
    pub fn insert(&self, value: String, secret: ClientSecret, ttl: Duration) {
        let now = Instant::now();
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (_, expires)| *expires > now);
        if map.len() >= MAX_HELD
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(value, (secret, now + ttl));
    }

    /// Takes a secret out, if it is held and not expired.
    pub fn take(&self, value: &str) -> Option<ClientSecret> {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(value)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(secret, _)| secret)
    }
}

/// Redeems a secret (this node's, else the shared one): once, before it expires.
pub async fn redeem(state: &AppState, value: &str) -> Option<ClientSecret> {
    if let Some(secret) = state.realtime.client_secrets.take(value) {
        return Some(secret);
    }
    state
        .cluster
        .take_ticket::<ClientSecret>(value)
        .await
        .ok()
        .flatten()
        .filter(|s| s.expires_at > state.clock.now())
}
