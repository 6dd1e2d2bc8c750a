//! `/v1/cache`: hit/miss counters of the cache levels, and clearing a dealership's cached
//! answers.
//!
//! Levels: `embedding` (question text → vector; shared by every dealership, since a
//! text's vector does not depend on who asks, so its counters are the node's),
//! `semantic` (similar question → stored answer, per dealership) and `context` (follow-up
//! questions answered with the session's recent turns; counted in `/metrics`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::documents::DealershipQuery;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::db::audit::{self, NewAuditEntry};
use crate::state::AppState;

/// Counters of one cache.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
}

/// The cache levels of this node, as the caller may see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStatsOut {
    /// The dealership the semantic counters are for (`null`: every dealership).
    pub dealership_id: Option<String>,
    /// Query text → embedding (node-wide).
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

/// Cache counters: a dealership_admin sees their dealership's semantic cache; a
/// super_admin every dealership's, or one with `?dealership_id=`.
#[utoipa::path(get, path = "/v1/cache/stats", tag = "caches", security(("bearer" = [])),
    params(DealershipQuery),
    responses((status = 200, body = CacheStatsOut), (status = 403, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
) -> Result<Json<CacheStatsOut>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let tenant = principal.list_scope(q.dealership_id.as_deref()).filter();
    let shared = &state.realtime.shared;
    Ok(Json(CacheStatsOut {
        dealership_id: tenant.map(str::to_owned),
        embedding: counters(shared.embeddings.stats().await),
        semantic: counters(shared.semantic.stats_for(tenant).await),
    }))
}

/// Forgets the caller's dealership's cached answers (super_admin: every dealership's,
/// or one with `?dealership_id=`).
#[utoipa::path(delete, path = "/v1/cache", tag = "caches", security(("bearer" = [])),
    params(DealershipQuery),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn clear(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let tenant = principal.list_scope(q.dealership_id.as_deref()).filter();
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
