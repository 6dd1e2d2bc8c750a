//! `POST /v1/sessions` (ticket for a new conversation), `GET /v1/sessions/{id}/ws` (the
//! WebSocket upgrade) and `POST /v1/sessions/{id}/webrtc` (the WebRTC offer/answer).

use std::time::Duration;

use adam_actors::RegistryError;
use adam_actors::events::TurnDetection;
use adam_actors::outbox::{Outbox, OutboxReceiver, outbox};
use adam_actors::ports::AvatarSettings;
use adam_actors::session::{SessionArgs, SessionHandle, SessionSettings};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{ClientIp, Json};
use crate::auth::Principal;
use crate::auth::Role;
use crate::auth::principal::{authenticate, bearer_in};
use crate::db::{dealerships, new_id};
use crate::realtime::quota;
use crate::realtime::socket;
use crate::realtime::tickets::Grant;
use crate::realtime::transport::{self, Limits};
use crate::realtime::webrtc::{IceServer, NegotiationError, SessionDescription};
use crate::state::AppState;

/// Optional body of `POST /v1/sessions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Dealership to talk to (super_admin only; others use their own).
    pub dealership_id: Option<String>,
}

/// Where and how to connect.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionTicket {
    /// The new session's id.
    pub session_id: String,
    /// Relative WebSocket URL including the ticket.
    pub ws_url: String,
    /// Relative URL to `POST` a WebRTC offer to, including the same ticket (absent when
    /// the node does not offer WebRTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webrtc_url: Option<String>,
    /// ICE servers for the browser's `RTCPeerConnection` (empty when none are needed).
    pub ice_servers: Vec<IceServer>,
    /// One-time ticket: opens either transport, once.
    pub ticket: String,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
    /// The dealership's avatar settings, for the client to render.
    #[schema(value_type = Object)]
    pub avatar: serde_json::Value,
    /// The notice that the conversation is recorded, for the client to show.
    pub recording_notice: String,
}

/// Ticket query.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TicketQuery {
    /// The one-time ticket from `POST /v1/sessions`.
    pub ticket: Option<String>,
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Starts a conversation: returns a one-time ticket for the WebSocket.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body(content = Option<CreateSession>),
    params(("X-Embed-Key" = Option<String>, Header, description = "Public embed key (anonymous visitors)")),
    security(("bearer" = []), ()),
    responses((status = 201, body = SessionTicket), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`dealership_id` names no dealership"),
              (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SessionTicket>), ApiError> {
    // The body is optional: anonymous visitors usually send none.
    let body: CreateSession = if body.iter().all(u8::is_ascii_whitespace) {
        CreateSession::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                ApiError::validation("body", e.to_string())
            } else {
                ApiError::BadRequest("malformed JSON body".into())
            }
        })?
    };
    let (dealership, user_id, allowed_origins) = if let Some(token) = bearer_in(&headers) {
        let principal = authenticate(&state, token).await?;
        let d = principal_dealership(&state, &principal, body.dealership_id).await?;
        // Signed-in users come from Adam's own pages: the CORS allowlist applies.
        (
            d,
            Some(principal.user_id),
            state.settings.http.cors_allowed_origins.clone(),
        )
    } else if let Some(key) = headers.get("x-embed-key").and_then(|v| v.to_str().ok()) {
        let d = dealerships::by_embed_key(&state.db, key.trim())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let allowed: Vec<String> = serde_json::from_str(&d.allowed_origins).unwrap_or_default();
        match origin(&headers) {
            Some(o) if allowed.iter().any(|a| a == o) => {}
            _ => return Err(ApiError::Forbidden),
        }
        (d, None, allowed)
    } else {
        return Err(ApiError::Unauthorized);
    };
    let session_id = new_id();
    let anonymous = user_id.is_none();
    let grant = admit(
        &state,
        &dealership,
        Admission {
            session_id: &session_id,
            user_id,
            allowed_origins,
            anonymous,
            ip,
        },
    )
    .await?;
    let ticket = issue_ticket(&state, grant).await;
    let webrtc = &state.realtime.webrtc;
    Ok((
        StatusCode::CREATED,
        Json(SessionTicket {
            ws_url: format!("/v1/sessions/{session_id}/ws?ticket={ticket}"),
            webrtc_url: webrtc
                .enabled()
                .then(|| format!("/v1/sessions/{session_id}/webrtc?ticket={ticket}")),
            ice_servers: webrtc.ice_servers(&session_id, state.clock.now()),
            session_id,
            ticket,
            expires_in: state.realtime.tickets.ttl_secs(),
            avatar: serde_json::from_str(&dealership.avatar)
                .unwrap_or_else(|_| serde_json::json!({})),
            recording_notice: state.settings.privacy.recording_notice(&dealership),
        }),
    ))
}

/// The dealership a signed-in caller opens a session at: a super_admin names one, anyone
/// else gets their own.
pub(crate) async fn principal_dealership(
    state: &AppState,
    principal: &Principal,
    requested: Option<String>,
) -> Result<dealerships::Dealership, ApiError> {
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
    dealerships::get(&state.db, principal.tenant(), &dealership_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Who is being admitted to a new session.
pub(crate) struct Admission<'a> {
    /// The new session's id.
    pub session_id: &'a str,
    /// The signed-in user (none: a visitor or an API key).
    pub user_id: Option<String>,
    /// Browser origins the session may be opened from.
    pub allowed_origins: Vec<String>,
    /// Counted against the dealership's anonymous-session quota.
    pub anonymous: bool,
    /// The client's address (per-IP session rate).
    pub ip: std::net::IpAddr,
}

/// Admits a new session of `dealership` (drain, quotas, the node limit) and returns its
/// grant, holding a quota slot.
pub(crate) async fn admit(
    state: &AppState,
    dealership: &dealerships::Dealership,
    who: Admission<'_>,
) -> Result<Grant, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::Draining);
    }
    let slot = quota::admit(state, dealership, who.anonymous, who.ip, who.session_id).await?;
    if state.realtime.registry.count().await >= state.settings.session.max_sessions
        || state.realtime.saturated()
    {
        quota::release(state, &slot).await;
        state.realtime.shared.metrics.busy_refusals.inc();
        return Err(ApiError::Busy);
    }
    Ok(Grant {
        session_id: who.session_id.to_owned(),
        tenant: dealership.id.clone(),
        user_id: who.user_id,
        allowed_origins: who.allowed_origins,
        persona: dealership.persona.clone(),
        voice: dealership.voice.clone(),
        avatar: avatar_settings(&dealership.avatar, state.settings.providers.avatar.name()),
        timezone: dealership.timezone.clone(),
        slot: Some(slot),
        limits: quota::limits_of(state, dealership),
    })
}

/// A dealership's `avatar` JSON as the session needs it: its `provider` (else the node's
/// `providers.avatar`) and `avatar_id`.
fn avatar_settings(json: &str, default_provider: &str) -> AvatarSettings {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let text = |key: &str| {
        value[key]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    AvatarSettings {
        provider: text("provider").unwrap_or_else(|| default_provider.to_owned()),
        avatar_id: text("avatar_id"),
    }
}

/// Issues a ticket: shared through Redis when nodes share it, so whichever node the
/// client reaches next can redeem it; kept on this node otherwise (or while Redis is down).
async fn issue_ticket(state: &AppState, grant: Grant) -> String {
    let tickets = &state.realtime.tickets;
    let ticket = crate::realtime::tickets::new_ticket();
    match state
        .cluster
        .put_ticket(&ticket, &grant, tickets.ttl())
        .await
    {
        Ok(true) => {}
        Ok(false) | Err(_) => tickets.insert(ticket.clone(), grant),
    }
    ticket
}

/// Redeems the ticket of `id` (this node's, else the shared one) and checks the browser
/// origin against it.
async fn redeem(
    state: &AppState,
    id: &str,
    ticket: Option<String>,
    headers: &HeaderMap,
) -> Result<Grant, ApiError> {
    let ticket = ticket.ok_or(ApiError::Unauthorized)?;
    let grant = match state.realtime.tickets.redeem(&ticket, id) {
        Some(grant) => grant,
        None => state
            .cluster
            .take_ticket::<Grant>(&ticket)
            .await
            .ok()
            .flatten()
            .filter(|g| g.session_id == id)
            .ok_or(ApiError::Unauthorized)?,
    };
    if let Some(o) = origin(headers)
        && !grant.allowed_origins.iter().any(|a| a == o)
    {
        return Err(ApiError::Forbidden);
    }
    // An account disabled or deleted since the ticket was issued opens nothing.
    if let Some(user_id) = &grant.user_id {
        let user = crate::db::users::get(&state.db, crate::db::Tenant::All, user_id).await?;
        if user.is_none_or(|u| u.disabled) {
            if let Some(slot) = &grant.slot {
                quota::release(state, slot).await;
            }
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(grant)
}

/// A started session, its outbox, and the slot it holds until its transport ends.
pub(crate) type Started = (SessionHandle, Outbox, OutboxReceiver, Option<quota::Slot>);

/// Gives the session's slot back once its transport ended.
pub(crate) async fn after_transport(state: AppState, slot: Option<quota::Slot>) {
    if let Some(slot) = slot {
        quota::release(&state, &slot).await;
    }
}

/// Starts the session actor tree for a redeemed ticket.
pub(crate) async fn start_session(
    state: &AppState,
    id: &str,
    grant: Grant,
    transport: &str,
) -> Result<Started, ApiError> {
    let cfg = &state.settings.session;
    let (outbox_tx, outbox_rx) = outbox(
        cfg.outbound_queue,
        cfg.slow_client_drops,
        state.realtime.shared.metrics.clone(),
    );
    // WebRTC carries Opus at 48 kHz; the session resamples for the models.
    let (input_sample_rate, output_sample_rate, fixed_sample_rates) = match transport {
        "webrtc" => (
            crate::realtime::webrtc::SAMPLE_RATE,
            crate::realtime::webrtc::SAMPLE_RATE,
            true,
        ),
        // The OpenAI Realtime API's `audio/pcm` is 24 kHz both ways.
        "openai" => (
            crate::realtime::openai::PCM_RATE,
            crate::realtime::openai::PCM_RATE,
            false,
        ),
        _ => (cfg.input_sample_rate, cfg.output_sample_rate, false),
    };
    let limits = &grant.limits;
    let slot = grant.slot.clone();
    // A monthly cap reached since the ticket was issued: say so, then close.
    let closing_notice = quota::cap_reached(state, &grant.tenant, limits)
        .await
        .then(|| quota::BUSY_NOTICE.to_owned());
    let vocabulary = state
        .realtime
        .vocabularies
        .for_dealership(&grant.tenant)
        .await;
    let args = SessionArgs {
        id: id.to_owned(),
        tenant: grant.tenant,
        user_id: grant.user_id,
        transport: transport.into(),
        settings: SessionSettings {
            input_sample_rate,
            output_sample_rate,
            fixed_sample_rates,
            voice: grant.voice,
            turn_detection: TurnDetection {
                silence_duration_ms: cfg.silence_ms,
                min_speech_ms: cfg.min_speech_ms,
                max_turn_ms: cfg.max_turn_ms,
            },
            persona: grant.persona,
            timezone: grant.timezone,
            avatar: grant.avatar,
            history_turns: cfg.history_turns,
            early_transcription_ms: cfg.early_transcription_ms,
            retrieval_top_k: state.settings.knowledge.top_k,
            max_duration: Some(Duration::from_secs(limits.max_session_secs)),
            turns_per_minute: limits.turns_per_minute,
            max_stored_chars: limits.max_turn_chars,
            closing_notice,
            vocabulary,
            ..SessionSettings::default()
        },
        outbox: outbox_tx.clone(),
        shared: state.realtime.shared.clone(),
    };
    let started = state.realtime.registry.start_session(args).await;
    if let Some(slot) = &slot {
        match &started {
            Ok(_) => quota::hold(state, slot).await,
            Err(_) => quota::release(state, slot).await,
        }
    }
    match started {
        Ok(s) => {
            state.cluster.claim(id).await;
            Ok((s, outbox_tx, outbox_rx, slot))
        }
        Err(RegistryError::Busy(_)) => Err(ApiError::Busy),
        Err(RegistryError::Draining) => Err(ApiError::Draining),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!(e))),
    }
}

pub(crate) fn limits(state: &AppState) -> Limits {
    let cfg = &state.settings.session;
    Limits {
        max_message_bytes: cfg.max_message_bytes,
        max_messages_per_sec: cfg.max_messages_per_sec,
        idle_timeout: Duration::from_secs(cfg.idle_timeout_secs),
        ping_every: Duration::from_secs(15),
    }
}

/// Bytes tungstenite reads from a client socket at a time: a few 20 ms audio frames.
pub(crate) const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Upgrades to the realtime WebSocket (see `docs/protocol.md`).
#[utoipa::path(get, path = "/v1/sessions/{id}/ws", tag = "sessions",
    params(("id" = String, Path), TicketQuery),
    responses((status = 101, description = "Switching protocols"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(session_id = %id))]
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let grant = redeem(&state, &id, query.ticket, &headers).await?;
    let (session, outbox_tx, outbox_rx, slot) =
        start_session(&state, &id, grant, "websocket").await?;
    let limits = limits(&state);
    // The transport enforces our own (smaller) limit and closes with 1009; tungstenite's
    // limit only guards against absurd frames.
    let hard_limit = (limits.max_message_bytes * 16).max(1 << 20);
    let failed = session.clone();
    let (failed_state, failed_slot) = (state.clone(), slot.clone());
    Ok(ws
        // tungstenite zero-fills its whole read buffer (128 KiB by default) before every
        // socket read: with a 640-byte audio frame per read that memset was a quarter of
        // the server's CPU at 400 sessions. Larger messages just take several reads.
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_failed_upgrade(move |e| {
            tracing::warn!(error = %e, "websocket upgrade failed");
            failed.end("upgrade failed", transport::close::INTERNAL);
            tokio::spawn(after_transport(failed_state, failed_slot));
        })
        .on_upgrade(move |sock| async move {
            socket::run(sock, session, outbox_tx, outbox_rx, limits).await;
            after_transport(state, slot).await;
        })
        .into_response())
}

/// Answers a WebRTC offer and starts the session on that peer connection (see
/// `docs/protocol.md#webrtc`).
#[utoipa::path(post, path = "/v1/sessions/{id}/webrtc", tag = "sessions",
    params(("id" = String, Path), TicketQuery),
    request_body = SessionDescription,
    responses((status = 201, body = SessionDescription), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(session_id = %id))]
pub async fn webrtc(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
    headers: HeaderMap,
    Json(offer): Json<SessionDescription>,
) -> Result<(StatusCode, Json<SessionDescription>), ApiError> {
    let transport = state.realtime.webrtc.clone();
    if !transport.enabled() {
        return Err(ApiError::NotFound);
    }
    let grant = redeem(&state, &id, query.ticket, &headers).await?;
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::Draining);
    }
    let peer = transport.negotiate(offer).await.map_err(|e| match e {
        NegotiationError::InvalidOffer(message) => ApiError::validation("sdp", message),
        NegotiationError::NoPort => ApiError::Busy,
        NegotiationError::Internal(message) => ApiError::Internal(anyhow::anyhow!(message)),
    })?;
    let answer = peer.answer.clone();
    let (session, outbox_tx, outbox_rx, slot) =
        match start_session(&state, &id, grant, "webrtc").await {
            Ok(started) => started,
            Err(e) => {
                peer.close().await;
                return Err(e);
            }
        };
    let limits = limits(&state);
    tokio::spawn(async move {
        crate::realtime::webrtc::run(transport, peer, session, outbox_tx, outbox_rx, limits).await;
        after_transport(state, slot).await;
    });
    Ok((StatusCode::CREATED, Json(answer)))
}
