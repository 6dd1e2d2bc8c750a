//! `/v1/knowledge-gaps`: the questions a dealership's documents did not answer, grouped
//! with the similar ones, so its admins see which document to add. A gap clears itself:
//! after a document is indexed, each gap asked before it is asked again, and it goes away
//! once the documents answer it.

use std::collections::HashMap;

use adam_actors::semantic_cache::normalise;
use adam_actors::vector::cosine;
use axum::extract::{Query, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::documents::DealershipQuery;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::db::{Tenant, dealerships, gaps};
use crate::state::AppState;

/// Unanswered turns read per request (the newest).
const MOST_TURNS: i64 = 2000;
/// Questions at least this similar (MiniLM cosine) are one gap.
const SAME_GAP: f32 = 0.8;
/// Gaps re-asked per request after a document change (the rest on the next request).
const MOST_RECHECKS: usize = 20;

/// One question the documents do not answer, with the similar ones asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeGap {
    /// Its dealership.
    pub dealership_id: String,
    /// The question as most recently asked.
    pub question: String,
    /// How many times it (or a similar question) was asked.
    pub count: usize,
    /// Other wordings, up to three.
    pub similar: Vec<String>,
    /// RFC 3339.
    pub first_asked_at: String,
    /// RFC 3339.
    pub last_asked_at: String,
}

/// The gaps, most asked first.
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeGaps {
    /// The gaps.
    pub gaps: Vec<KnowledgeGap>,
}

struct Group {
    dealership_id: String,
    turns: Vec<gaps::GapTurn>,
    vector: Vec<f32>,
}

impl Group {
    fn last_asked(&self) -> i64 {
        self.turns.iter().map(|t| t.started_at).max().unwrap_or(0)
    }

    fn last_checked(&self) -> i64 {
        self.turns
            .iter()
            .filter_map(|t| t.gap_checked_at)
            .max()
            .unwrap_or(0)
    }

    fn ids(&self) -> Vec<String> {
        self.turns.iter().map(|t| t.id.clone()).collect()
    }
}

/// Questions the documents did not answer: a dealership_admin sees their dealership's, a
/// super_admin every dealership's or one with `?dealership_id=`.
#[utoipa::path(get, path = "/v1/knowledge-gaps", tag = "documents", security(("bearer" = [])),
    params(DealershipQuery),
    responses((status = 200, body = KnowledgeGaps), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DealershipQuery>,
) -> Result<Json<KnowledgeGaps>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let tenant = principal.list_scope(q.dealership_id.as_deref());
    let turns = gaps::unanswered(&state.db, tenant, MOST_TURNS).await?;
    let mut groups = group(&state, turns).await?;
    recheck(&state, tenant, &mut groups).await?;
    groups.sort_by(|a, b| {
        b.turns
            .len()
            .cmp(&a.turns.len())
            .then(b.last_asked().cmp(&a.last_asked()))
    });
    let gaps = groups
        .into_iter()
        .map(|g| {
            let newest = g.turns.iter().max_by_key(|t| t.started_at);
            let question = newest.map(|t| t.user_text.clone()).unwrap_or_default();
            let mut similar: Vec<String> = Vec::new();
            for t in &g.turns {
                if normalise(&t.user_text) != normalise(&question)
                    && !similar
                        .iter()
                        .any(|s| normalise(s) == normalise(&t.user_text))
                    && similar.len() < 3
                {
                    similar.push(t.user_text.clone());
                }
            }
            let first = g.turns.iter().map(|t| t.started_at).min().unwrap_or(0);
            KnowledgeGap {
                dealership_id: g.dealership_id.clone(),
                question,
                count: g.turns.len(),
                similar,
                first_asked_at: crate::clock::rfc3339(first),
                last_asked_at: crate::clock::rfc3339(g.last_asked()),
            }
        })
        .collect();
    Ok(Json(KnowledgeGaps { gaps }))
}

/// Groups the turns per dealership: the same words first, then similar meaning.
async fn group(state: &AppState, turns: Vec<gaps::GapTurn>) -> Result<Vec<Group>, ApiError> {
    let mut exact: HashMap<(String, String), Vec<gaps::GapTurn>> = HashMap::new();
    for t in turns {
        let key = (t.dealership_id.clone(), normalise(&t.user_text));
        if key.1.is_empty() {
            continue;
        }
        exact.entry(key).or_default().push(t);
    }
    let mut keyed: Vec<((String, String), Vec<gaps::GapTurn>)> = exact.into_iter().collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if keyed.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = keyed.iter().map(|((_, text), _)| text.clone()).collect();
    let vectors = state
        .realtime
        .shared
        .providers
        .embedder
        .embed(texts, adam_actors::ports::CancellationToken::new())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "embedding knowledge gaps failed");
            ApiError::Unavailable
        })?;
    let mut groups: Vec<Group> = Vec::new();
    for (((dealership_id, _), turns), vector) in keyed.into_iter().zip(vectors) {
        match groups
            .iter_mut()
            .filter(|g| g.dealership_id == dealership_id)
            .find(|g| cosine(&g.vector, &vector) >= SAME_GAP)
        {
            Some(g) => g.turns.extend(turns),
            None => groups.push(Group {
                dealership_id,
                turns,
                vector,
            }),
        }
    }
    Ok(groups)
}

/// Asks again each gap asked (or last re-asked) before its dealership's newest document;
/// the ones now answered are cleared and dropped.
async fn recheck(
    state: &AppState,
    tenant: Tenant<'_>,
    groups: &mut Vec<Group>,
) -> Result<(), ApiError> {
    let changed: HashMap<String, i64> = gaps::documents_changed(&state.db, tenant)
        .await?
        .into_iter()
        .collect();
    let stale: Vec<usize> = (0..groups.len())
        .filter(|&i| {
            let g = &groups[i];
            changed
                .get(&g.dealership_id)
                .is_some_and(|&at| at >= g.last_asked().max(g.last_checked()))
        })
        .take(MOST_RECHECKS)
        .collect();
    let mut answered = Vec::new();
    let mut dealership_settings: HashMap<String, (String, String)> = HashMap::new();
    let knowledge = &state.settings.knowledge;
    let now = state.clock.now();
    for i in stale {
        let g = &groups[i];
        let Some(question) = g
            .turns
            .iter()
            .max_by_key(|t| t.started_at)
            .map(|t| t.user_text.clone())
        else {
            continue;
        };
        // Read once per dealership: a dealership_admin's gaps are all of one.
        if !dealership_settings.contains_key(&g.dealership_id) {
            let found =
                dealerships::get(&state.db, Tenant::Only(&g.dealership_id), &g.dealership_id)
                    .await?
                    .map(|d| (d.persona, d.timezone))
                    .unwrap_or_default();
            dealership_settings.insert(g.dealership_id.clone(), found);
        }
        let (persona, timezone) = dealership_settings
            .get(&g.dealership_id)
            .cloned()
            .unwrap_or_default();
        let asked = crate::knowledge::ask::ask(
            &state.realtime.shared.providers,
            &g.dealership_id,
            &persona,
            &timezone,
            &question,
            knowledge.top_k,
            knowledge.top_k,
        )
        .await;
        match asked {
            Ok(a) if !a.usage.unanswered => {
                gaps::resolve(&state.db, &g.dealership_id, &g.ids()).await?;
                answered.push(i);
            }
            Ok(_) => gaps::checked(&state.db, &g.dealership_id, &g.ids(), now).await?,
            // Asked again on the next request.
            Err(e) => tracing::warn!(error = %e, "re-asking a knowledge gap failed"),
        }
    }
    for i in answered.into_iter().rev() {
        groups.remove(i);
    }
    Ok(())
}
