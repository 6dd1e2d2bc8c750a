//! The HTTP side of the OpenAI Realtime API: `GET /v1/realtime?model=…` (who is calling —
//! a dealership API key, an access token or a client secret — admission, then the WebSocket
//! adapter of `realtime::openai`) and `POST /v1/realtime/client_secrets`.

use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{ClientIp, Json};
use crate::api::realtime::{self as routes, Admission};
use crate::auth::principal::{authenticate, bearer_in};
use crate::db::{Tenant, api_keys, dealerships, new_id};
use crate::realtime::openai::config::Config;
use crate::realtime::openai::secrets::{
    self, ClientSecret, DEFAULT_TTL_SECS, SECRET_PREFIX, TTL_RANGE,
};
use crate::realtime::openai::{config, socket, translate};
use crate::realtime::transport;
use crate::state::AppState;

/// Largest client message on this endpoint: the API's clients batch audio into
/// `input_audio_buffer.append` events far larger than Adam's 20 ms frames (1 MiB of
/// base64 is about 16 s of 24 kHz PCM).
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// What a browser sends in `Sec-WebSocket-Protocol` to carry its key (the API's own
/// convention, as browsers cannot set `Authorization` on a WebSocket).
const KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// Query of `GET /v1/realtime`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RealtimeQuery {
    /// The model the client names: accepted and echoed, selects nothing.
    pub model: Option<String>,
    /// Dealership to talk to (super_admin's access token only; a key or another user's
    /// token has its own).
    pub dealership_id: Option<String>,
    /// `true`: also send Adam's own events (`adam.avatar.viseme`, …), which the API's
    /// strict clients would not know.
    pub adam_events: Option<bool>,
}

/// The credential of a request: `Authorization: Bearer`, or the browser's subprotocol.
fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = bearer_in(headers) {
        return Some(token.to_owned());
    }
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(KEY_PROTOCOL))
                .map(str::to_owned)
        })
}

/// Who connects: the dealership, the signed-in user if any, the origins allowed.
struct Caller {
    dealership: dealerships::Dealership,
    user_id: Option<String>,
    allowed_origins: Vec<String>,
}

/// The caller of a client secret, and the session configuration it carries.
async fn secret_caller(state: &AppState, value: &str) -> Result<(Caller, Value), ApiError> {
    let secret = secrets::redeem(state, value)
        .await
        .ok_or(ApiError::Unauthorized)?;
    let dealership = dealerships::get(&state.db, Tenant::All, &secret.dealership_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok((
        Caller {
            dealership,
            user_id: secret.user_id,
            allowed_origins: secret.allowed_origins,
        },
        secret.session,
    ))
}

async fn caller(
    state: &AppState,
    token: &str,
    requested: Option<String>,
) -> Result<Caller, ApiError> {
    if token.starts_with(api_keys::KEY_PREFIX) {
        let key = api_keys::authenticate(&state.db, token, state.clock.now())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if !key.has_scope("realtime") {
            return Err(ApiError::Denied {
                code: "scope_missing",
                message: "this API key lacks the realtime scope",
            });
        }
        let dealership = dealerships::get(&state.db, Tenant::All, &key.dealership_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // A key is a server's secret: no browser origin may use it.
        return Ok(Caller {
            dealership,
            user_id: None,
            allowed_origins: Vec::new(),
        });
    }
    let principal = authenticate(state, token).await?;
    let dealership = routes::principal_dealership(state, &principal, requested).await?;
    Ok(Caller {
        dealership,
        user_id: (principal.api_key_id.is_none()).then_some(principal.user_id),
        allowed_origins: state.settings.http.cors_allowed_origins.clone(),
    })
}

/// Opens a conversation speaking the OpenAI Realtime API (see `docs/protocol.md`).
#[utoipa::path(get, path = "/v1/realtime", tag = "sessions", params(RealtimeQuery),
    security(("bearer" = [])),
    responses((status = 101, description = "Switching protocols: OpenAI Realtime events follow"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn connect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<RealtimeQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = credential(&headers).ok_or(ApiError::Unauthorized)?;
    if query
        .model
        .as_ref()
        .is_some_and(|m| m.is_empty() || m.len() > 100)
    {
        return Err(ApiError::validation("model", "must be 1 to 100 characters"));
    }
    let (caller, requested_session) = if token.starts_with(secrets::SECRET_PREFIX) {
        let (caller, session) = secret_caller(&state, &token).await?;
        (caller, Some(session))
    } else {
        (caller(&state, &token, query.dealership_id).await?, None)
    };
    let model = query
        .model
        .or_else(|| {
            requested_session
                .as_ref()
                .and_then(|s| s.get("model"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "gpt-realtime".into());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !caller.allowed_origins.iter().any(|a| a == origin)
    {
        return Err(ApiError::Forbidden);
    }
    let session_id = new_id();
    let grant = routes::admit(
        &state,
        &caller.dealership,
        Admission {
            session_id: &session_id,
            user_id: caller.user_id,
            allowed_origins: caller.allowed_origins,
            anonymous: false,
            ip,
        },
    )
    .await?;
    let mut initial = config::Config::new(
        model,
        grant.voice.clone(),
        state.settings.session.silence_ms,
    );
    // A client secret's configuration applies from the start (it was validated when minted).
    let mut opening = None;
    if let Some(requested) = &requested_session
        && let Ok((configured, update)) = initial.merge(requested)
    {
        initial = configured;
        opening = Some(update);
    }
    let (session, outbox_tx, outbox_rx, slot) =
        routes::start_session(&state, &session_id, grant, "openai").await?;
    let mut translator =
        translate::Translator::new(&session_id, initial, query.adam_events.unwrap_or(false));
    let opening: Vec<_> = opening
        .into_iter()
        .map(|update| translator.opening(update))
        .collect();
    let mut limits = routes::limits(&state);
    limits.max_message_bytes = limits.max_message_bytes.max(MAX_MESSAGE_BYTES);
    let hard_limit = limits.max_message_bytes * 2;
    let failed = session.clone();
    let (failed_state, failed_slot) = (state.clone(), slot.clone());
    Ok(ws
        .protocols(["realtime"])
        .read_buffer_size(routes::READ_BUFFER_BYTES)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_failed_upgrade(move |e| {
            tracing::warn!(error = %e, "websocket upgrade failed");
            failed.end("upgrade failed", transport::close::INTERNAL);
            tokio::spawn(routes::after_transport(failed_state, failed_slot));
        })
        .on_upgrade(move |sock| async move {
            socket::run(
                sock, translator, opening, session, outbox_tx, outbox_rx, limits,
            )
            .await;
            routes::after_transport(state, slot).await;
        })
        .into_response())
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
    let caller = caller(&state, token, query.dealership_id).await?;
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
