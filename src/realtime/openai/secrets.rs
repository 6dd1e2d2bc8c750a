//! `POST /v1/realtime/client_secrets`: ephemeral client secrets (`ek_…`), as the OpenAI
//! API mints them for browsers. A server holding a dealership API key (or a signed-in
//! user) asks for one with the session's configuration; the browser opens `/v1/realtime`
//! with it, once, before it expires. Kept on this node, and in Redis when nodes share it,
//! so whichever node the browser reaches can redeem it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::config::Config;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::Json;
use crate::startup::AppState;

/// What every client secret starts with.
pub const SECRET_PREFIX: &str = "ek_";
/// Lifetime when the request names none (the API's default).
const DEFAULT_TTL_SECS: u64 = 600;
/// Allowed lifetimes (the API's range).
const TTL_RANGE: (u64, u64) = (10, 7_200);
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

/// Query of `POST /v1/realtime/client_secrets`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SecretQuery {
    /// Dealership the session will talk to (super_admin's access token only).
    pub dealership_id: Option<String>,
}

/// `expires_after` of the request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExpiresAfter {
    /// Always `created_at`.
    pub anchor: Option<String>,
    /// Lifetime, 10–7200 s (600 when absent).
    pub seconds: Option<u64>,
}

/// Body of `POST /v1/realtime/client_secrets` (every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateClientSecret {
    /// How long the secret stays valid.
    pub expires_after: Option<ExpiresAfter>,
    /// The session's configuration, as in `session.update` (`type: "realtime"`).
    #[schema(value_type = Option<Object>)]
    pub session: Option<Value>,
}

/// A minted secret, in the API's shape.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientSecretOut {
    /// The secret (`ek_…`): opens `/v1/realtime` once.
    pub value: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The session configuration it opens with.
    #[schema(value_type = Object)]
    pub session: Value,
}

/// Mints an ephemeral client secret for a browser (see `docs/protocol.md#openai-realtime-compatibility`).
#[utoipa::path(post, path = "/v1/realtime/client_secrets", tag = "sessions",
    security(("bearer" = [])), params(SecretQuery), request_body(content = Option<CreateClientSecret>),
    responses((status = 200, body = ClientSecretOut), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`dealership_id` names no dealership"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ClientSecretOut>, ApiError> {
    let request: CreateClientSecret = if body.iter().all(u8::is_ascii_whitespace) {
        CreateClientSecret::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                ApiError::validation("body", e.to_string())
            } else {
                ApiError::BadRequest("malformed JSON body".into())
            }
        })?
    };
    let token = crate::auth::principal::bearer_in(&headers).ok_or(ApiError::Unauthorized)?;
    if token.starts_with(SECRET_PREFIX) {
        // A secret does not mint secrets.
        return Err(ApiError::Unauthorized);
    }
    let caller = super::caller(&state, token, query.dealership_id).await?;
    let ttl = match request.expires_after.and_then(|e| e.seconds) {
        None => DEFAULT_TTL_SECS,
        Some(s) if (TTL_RANGE.0..=TTL_RANGE.1).contains(&s) => s,
        Some(_) => {
            return Err(ApiError::validation(
                "expires_after.seconds",
                "must be between 10 and 7200",
            ));
        }
    };
    let session = request
        .session
        .unwrap_or_else(|| json!({"type": "realtime"}));
    let model = session
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("gpt-realtime")
        .to_owned();
    // Refuse now what `session.update` would refuse later.
    let (config, _) = Config::new(
        model,
        caller.dealership.voice.clone(),
        state.settings.session.silence_ms,
    )
    .merge(&session)
    .map_err(|refusal| ApiError::validation(refusal.param, refusal.message))?;
    let mut allowed_origins: Vec<String> =
        serde_json::from_str(&caller.dealership.allowed_origins).unwrap_or_default();
    allowed_origins.extend(caller.allowed_origins);
    let expires_at = state.clock.now() + ttl as i64;
    let value = format!(
        "{SECRET_PREFIX}{}",
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(40)
            .map(char::from)
            .collect::<String>()
    );
    let secret = ClientSecret {
        dealership_id: caller.dealership.id.clone(),
        user_id: caller.user_id,
        allowed_origins,
        session,
        expires_at,
    };
    let ttl = Duration::from_secs(ttl);
    match state.cluster.put_ticket(&value, &secret, ttl).await {
        Ok(true) => {}
        Ok(false) | Err(_) => state
            .realtime
            .client_secrets
            .insert(value.clone(), secret, ttl),
    }
    Ok(Json(ClientSecretOut {
        value,
        expires_at,
        session: config.session_json(""),
    }))
}
