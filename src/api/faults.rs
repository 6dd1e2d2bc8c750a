//! `POST /v1/sessions/{id}/faults`: makes a component of a live conversation crash, for
//! the fault-injection tests. It exists only with `testing.fault_injection = true`, which
//! settings validation refuses in production; otherwise it answers 404 like any unknown
//! path. Not part of the public API (left out of the OpenAPI document).

use adam_actors::session::ChildKind;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::state::AppState;

/// Body: which component should panic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectFault {
    /// The component to crash.
    pub panic: FaultTarget,
}

/// A child actor of a session.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Speech input (`SttStream`).
    Stt,
    /// The answer in progress (`Turn`); nothing happens when no answer is in progress.
    Turn,
    /// Speech output (`TtsStream`).
    Tts,
    /// The avatar (`AvatarController`).
    Avatar,
}

impl From<FaultTarget> for ChildKind {
    fn from(target: FaultTarget) -> Self {
        match target {
            FaultTarget::Stt => ChildKind::Stt,
            FaultTarget::Turn => ChildKind::Turn,
            FaultTarget::Tts => ChildKind::Tts,
            FaultTarget::Avatar => ChildKind::Avatar,
        }
    }
}

/// Makes the named component of a live session panic; 202 once the fault is queued
/// behind the session's earlier messages. super_admin only.
#[tracing::instrument(skip_all, fields(session_id = %id))]
pub async fn inject(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<InjectFault>,
) -> Result<StatusCode, ApiError> {
    if !state.settings.testing.fault_injection {
        return Err(ApiError::NotFound);
    }
    principal.require(&[Role::SuperAdmin])?;
    let live = state
        .realtime
        .registry
        .get(&id)
        .await
        .ok_or(ApiError::NotFound)?;
    tracing::warn!(target_child = ?body.panic, "injecting a panic");
    live.inject_panic(body.panic.into());
    Ok(StatusCode::ACCEPTED)
}
