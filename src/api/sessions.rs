//! `/v1/sessions`: past and live conversations with their transcripts. Admins see
//! their dealership's; a `user` sees only their own. A live session held by another node
//! is described and ended through that node (see [`crate::cluster`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::cluster::ClusterError;
use crate::cluster::control::{Command, Outcome};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::sessions::{self, Session, Turn};
use crate::state::AppState;

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SessionQuery {
    /// Sessions to return (1–500, default 100).
    pub limit: Option<i64>,
    /// Only this dealership's sessions (super_admin only; ignored for others).
    pub dealership_id: Option<String>,
}

/// A session summary.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionOut {
    /// Unique id of the session.
    pub id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// Signed-in user, if any.
    pub user_id: Option<String>,
    /// `websocket` or `webrtc`.
    pub transport: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when ended.
    pub ended_at: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// The node holding the session while it is live (`null` once ended, or when no
    /// node can be asked).
    pub node: Option<String>,
}

impl From<Session> for SessionOut {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            dealership_id: s.dealership_id,
            user_id: s.user_id,
            transport: s.transport,
            started_at: rfc3339(s.started_at),
            ended_at: s.ended_at.map(rfc3339),
            end_reason: s.end_reason,
            node: None,
        }
    }
}

/// One turn of a transcript.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TurnOut {
    /// Position from 0.
    pub seq: i32,
    /// What the customer said.
    pub user_text: String,
    /// What the assistant said (up to the interruption).
    pub assistant_text: String,
    /// Cut short by barge-in.
    pub interrupted: bool,
    /// The documents did not answer it (listed in `/v1/knowledge-gaps`).
    #[serde(default)]
    pub unanswered: bool,
    /// Sources quoted.
    #[schema(value_type = Vec<Object>)]
    pub citations: serde_json::Value,
    /// Voice-to-voice latency.
    pub latency_ms: Option<i64>,
    /// RFC 3339.
    pub started_at: String,
    /// completed | cancelled | failed.
    pub status: String,
    /// Stage timings (ms).
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
}

impl From<Turn> for TurnOut {
    fn from(t: Turn) -> Self {
        Self {
            seq: t.seq,
            user_text: t.user_text,
            assistant_text: t.assistant_text,
            interrupted: t.interrupted,
            unanswered: t.unanswered,
            citations: serde_json::from_str(&t.citations).unwrap_or_else(|_| serde_json::json!([])),
            latency_ms: t.latency_ms,
            started_at: rfc3339(t.started_at),
            status: t.status,
            metrics: serde_json::from_str(&t.metrics).unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

/// A session with its transcript.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionDetail {
    /// The session.
    #[serde(flatten)]
    pub session: SessionOut,
    /// Its turns in order.
    pub turns: Vec<TurnOut>,
    /// The live session as its node sees it (`null` when not live).
    pub live: Option<LiveOut>,
}

/// A live session's state, from the node holding it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveOut {
    /// The node holding its media.
    pub node: String,
    /// Turns completed or cut so far.
    pub turns: u32,
    /// An answer is in progress.
    pub responding: bool,
}

fn owner_filter(principal: &Principal) -> Option<&str> {
    (principal.role == Role::User).then_some(principal.user_id.as_str())
}

/// Sessions visible to the caller, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])), params(SessionQuery),
    responses((status = 200, body = [SessionOut]), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<SessionQuery>,
) -> Result<Json<Vec<SessionOut>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 500"));
    }
    let rows = sessions::list(
        &state.db,
        principal.list_scope(q.dealership_id.as_deref()),
        owner_filter(&principal),
        limit,
    )
    .await?;
    let mut out: Vec<SessionOut> = rows.into_iter().map(SessionOut::from).collect();
    let live: Vec<String> = out
        .iter()
        .filter(|s| s.ended_at.is_none())
        .map(|s| s.id.clone())
        .collect();
    match state.cluster.owners(&state.realtime.registry, &live).await {
        Ok(nodes) => {
            let nodes: std::collections::HashMap<String, String> = live
                .into_iter()
                .zip(nodes)
                .filter_map(|(id, node)| Some((id, node?)))
                .collect();
            for s in &mut out {
                s.node = nodes.get(&s.id).cloned();
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing sessions without their nodes"),
    }
    Ok(Json(out))
}

/// The live state of a session: from this node's registry, else from the node the
/// directory names. `NodeUnreachable` when that node does not answer.
async fn live_state(state: &AppState, session: &Session) -> Result<Option<LiveOut>, ApiError> {
    let cluster = &state.cluster;
    if let Some(live) = state.realtime.registry.get(&session.id).await {
        return Ok(live.snapshot().await.map(|s| LiveOut {
            node: cluster.node_id().to_owned(),
            turns: s.turns,
            responding: s.responding,
        }));
    }
    if session.ended_at.is_some() || !cluster.is_shared() {
        return Ok(None);
    }
    let inspect = Command::Inspect {
        session_id: session.id.clone(),
    };
    match ask_holder(state, &session.id, inspect).await {
        Ok(Some((node, Outcome::Live { turns, responding }))) => Ok(Some(LiveOut {
            node,
            turns,
            responding,
        })),
        Ok(_) => Ok(None),
        Err(ClusterError::NoAnswer(node)) => Err(ApiError::NodeUnreachable(node)),
        // The transcript is still worth showing.
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the node holding a session");
            Ok(None)
        }
    }
}

/// One session with its transcript.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = SessionDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let tenant = principal.tenant();
    let session = sessions::get(&state.db, tenant, owner_filter(&principal), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let turns = sessions::turns(&state.db, tenant, &id).await?;
    let live = live_state(&state, &session).await?;
    let mut session = SessionOut::from(session);
    session.node = live.as_ref().map(|l| l.node.clone());
    Ok(Json(SessionDetail {
        session,
        turns: turns.into_iter().map(TurnOut::from).collect(),
        live,
    }))
}

/// Ends a live session (its transcript is kept), or deletes a finished session with its
/// transcript (knowledge gaps included) and the lead emails quoting it (admins).
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant();
    let session = sessions::get(&state.db, tenant, owner_filter(&principal), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    if end_live(&state, &session, "ended by admin").await? {
        record(&state, &principal, &session, "session.end").await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    if !sessions::delete(&state.db, tenant, &id).await? {
        return Err(ApiError::NotFound);
    }
    record(&state, &principal, &session, "session.delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the session with `reason` if it is live here or on another node; false when it
/// is not live.
pub(crate) async fn end_live(
    state: &AppState,
    session: &Session,
    reason: &str,
) -> Result<bool, ApiError> {
    if let Some(live) = state.realtime.registry.get(&session.id).await {
        live.end(reason, 1000);
        return Ok(true);
    }
    let cluster = &state.cluster;
    if session.ended_at.is_some() || !cluster.is_shared() {
        return Ok(false);
    }
    let end = Command::End {
        session_id: session.id.clone(),
        reason: reason.into(),
        code: 1000,
    };
    match ask_holder(state, &session.id, end).await {
        Ok(Some((_, Outcome::Ended))) => Ok(true),
        Ok(_) => Ok(false),
        Err(ClusterError::NoAnswer(node)) => Err(ApiError::NodeUnreachable(node)),
        // Deleting a transcript that another node may still be writing would lose it:
        // without the directory, refuse rather than guess.
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the node holding a session");
            Err(ApiError::Unavailable)
        }
    }
}

/// Why a user's live sessions end: the reason their clients see (close code 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEnd {
    /// An admin disabled the user.
    Disabled,
    /// An admin deleted the user.
    Deleted,
    /// The password was changed (by its owner, an admin, or an emailed link).
    PasswordChanged,
}

impl AccountEnd {
    /// The close reason.
    pub fn reason(self) -> &'static str {
        match self {
            AccountEnd::Disabled => "account disabled",
            AccountEnd::Deleted => "account deleted",
            AccountEnd::PasswordChanged => "password changed",
        }
    }
}

/// The sessions of `user_id` recorded as not ended, for [`end_user_sessions`] to look for
/// on other nodes. Read it before deleting the user (deletion forgets whose they were).
/// Empty for a single node, whose registry knows its sessions' users itself.
pub(crate) async fn sessions_to_end(state: &AppState, user_id: &str) -> Vec<String> {
    if !state.cluster.is_shared() {
        return Vec::new();
    }
    sessions::unended_of_user(&state.db, user_id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list the user's sessions on other nodes");
            Vec::new()
        })
}

/// Ends every live session of `user_id` promptly: this node's through its registry, and
/// those of `elsewhere` (from [`sessions_to_end`]) held by other nodes through the node
/// holding each. Their clients get close code 1000 with the reason. Best effort: a node
/// that does not answer is logged. Returns how many sessions were told to end.
pub(crate) async fn end_user_sessions(
    state: &AppState,
    user_id: &str,
    why: AccountEnd,
    elsewhere: Vec<String>,
) -> usize {
    let reason = why.reason();
    let mut ended = state.realtime.registry.end_user(user_id, reason).await;
    let cluster = &state.cluster;
    if !elsewhere.is_empty() {
        match cluster.owners(&state.realtime.registry, &elsewhere).await {
            Ok(nodes) => {
                for (session_id, node) in elsewhere.into_iter().zip(nodes) {
                    let Some(node) = node.filter(|n| n != cluster.node_id()) else {
                        continue;
                    };
                    let end = Command::End {
                        session_id,
                        reason: reason.into(),
                        code: 1000,
                    };
                    match cluster.request(&node, end).await {
                        Ok(Outcome::Ended) => ended += 1,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, node, user_id, "a node did not end the user's session")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, user_id, "could not find the nodes holding the user's sessions")
            }
        }
    }
    if ended > 0 {
        tracing::info!(user_id, ended, reason, "live sessions of the user ended");
    }
    ended
}

/// Sends `command` to the node the directory names for a session not held here;
/// `None` when no node holds it.
async fn ask_holder(
    state: &AppState,
    session_id: &str,
    command: Command,
) -> Result<Option<(String, Outcome)>, ClusterError> {
    let cluster = &state.cluster;
    let Some(node) = cluster.owner(&state.realtime.registry, session_id).await? else {
        return Ok(None);
    };
    let outcome = cluster.request(&node, command).await?;
    Ok(Some((node, outcome)))
}

async fn record(
    state: &AppState,
    principal: &Principal,
    session: &Session,
    action: &str,
) -> Result<(), ApiError> {
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&session.dealership_id),
            actor_user_id: Some(&principal.user_id),
            action,
            target_type: "session",
            target_id: &session.id,
            details: serde_json::json!({}),
        },
        state.clock.now(),
    )
    .await?;
    Ok(())
}
