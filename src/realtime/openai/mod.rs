//! `GET /v1/realtime?model=…`: the OpenAI Realtime API (GA schema) over WebSocket, so the
//! OpenAI SDKs and the tools built on them talk to Adam unchanged. An adapter on the
//! transport contract (`socket.rs`) plus a sans-IO translation between the API's events
//! and Adam's session events (`translate.rs`, `config.rs`); G.711 for `audio/pcmu` and
//! `audio/pcma` (`g711.rs`). What is and is not supported: `docs/protocol.md#openai-realtime-compatibility`.

pub mod config;
pub mod g711;
pub mod secrets;
pub mod socket;
pub mod translate;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

pub use config::PCM_RATE;

use super::routes::{self, Admission};
use super::transport;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ClientIp;
use crate::auth::Role;
use crate::auth::principal::{authenticate, bearer_in};
use crate::db::{Tenant, api_keys, dealerships, new_id};
use crate::startup::AppState;

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
    let dealership_id = match (principal.role, requested) {
        (Role::SuperAdmin, Some(id)) => id,
        (Role::SuperAdmin, None) => {
            return Err(ApiError::validation(
                "dealership_id",
                "a super_admin must choose a dealership",
            ));
        }
        (_, _) => principal.dealership_id.clone().ok_or(ApiError::Forbidden)?,
    };
    let dealership = dealerships::get(&state.db, principal.tenant(), &dealership_id)
        .await?
        .ok_or(ApiError::NotFound)?;
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
