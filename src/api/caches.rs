//! `/v1/caches`: hit/miss counters of the shared caches, and clearing a dealership's
//! cached answers (after its documents change).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::db::audit::{self, NewAuditEntry};
use crate::startup::AppState;

/// Counters of one cache.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// Entries held (all dealerships).
    pub entries: u64,
}

/// Both shared caches of this node.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatsOut {
    /// Query text → embedding.
    pub embedding: Option<CacheCounters>,
    /// Similar question → stored answer.
    pub semantic: Option<CacheCounters>,
}

fn counters(stats: Option<adam_actors::embedding_cache::CacheStats>) -> Option<CacheCounters> {
    stats.map(|s| CacheCounters {
        hits: s.hits,
        misses: s.misses,
        entries: s.entries,
    })
}

/// Cache counters of this node (admins).
#[utoipa::path(get, path = "/v1/caches", tag = "caches", security(("bearer" = [])),
    responses((status = 200, body = CacheStatsOut), (status = 403, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<CacheStatsOut>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let shared = &state.realtime.shared;
    Ok(Json(CacheStatsOut {
        embedding: counters(shared.embeddings.stats().await),
        semantic: counters(shared.semantic.stats().await),
    }))
}

/// Forgets the caller's dealership's cached answers (super_admin: every dealership's).
#[utoipa::path(delete, path = "/v1/caches/semantic", tag = "caches", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn clear_semantic(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let tenant = principal.tenant().filter();
    state.realtime.shared.semantic.clear(tenant);
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: tenant,
            actor_user_id: Some(&principal.user_id),
            action: "cache.semantic_clear",
            target_type: "cache",
            target_id: "semantic",
            details: serde_json::json!({}),
        },
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
