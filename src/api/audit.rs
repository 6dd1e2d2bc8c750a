//! `GET /v1/audit-log`: who did what, newest first, within the caller's tenant.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::db::audit::{self, AuditEntry};
use crate::state::AppState;

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries to return (1–500, default 100).
    pub limit: Option<i64>,
    /// Return entries older than this id (from the previous page's last entry).
    pub before: Option<String>,
    /// Only this dealership's entries (super_admin only; ignored for others).
    pub dealership_id: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditOut {
    /// Id (time-ordered).
    pub id: String,
    /// Dealership concerned.
    pub dealership_id: Option<String>,
    /// Who acted.
    pub actor_user_id: Option<String>,
    /// What was done, e.g. `user.create`.
    pub action: String,
    /// Target type.
    pub target_type: String,
    /// Target id.
    pub target_id: String,
    /// What changed.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        Self {
            details: serde_json::from_str(&e.details).unwrap_or_default(),
            id: e.id,
            dealership_id: e.dealership_id,
            actor_user_id: e.actor_user_id,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            created_at: rfc3339(e.created_at),
        }
    }
}

/// Audit entries of the caller's dealership (all for super_admin).
#[utoipa::path(get, path = "/v1/audit-log", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [AuditOut]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditOut>>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 500"));
    }
    let entries = audit::list(
        &state.db,
        principal.list_scope(q.dealership_id.as_deref()),
        q.before.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(entries.into_iter().map(AuditOut::from).collect()))
}
