//! `POST /v1/privacy/erase`: deletes everything Adam holds about one caller's contact
//! details: every conversation whose transcript mentions their email address or phone
//! number (ended first if live), the lead emails about them, and the dealership's cached
//! answers. Audited with hashes of the details, never the details.

use std::collections::BTreeSet;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::sessions::end_live;
use crate::auth::{Principal, Role};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::privacy::{self, Candidate, Deleted, Filter};
use crate::db::{Db, Tenant, dealerships, sessions};
use crate::privacy::contact::Contact;
use crate::state::AppState;

/// Candidate rows read per query.
const PAGE: i64 = 500;
/// Why a live conversation an erasure finds ends (`session.closed`, `end_reason`).
const END_REASON: &str = "erased on request";

/// Whose details to erase, and where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Email address, compared without regard to case (also found when spoken: "jane dot
    /// doe at example dot com").
    pub email: Option<String>,
    /// Phone number, compared by its digits: "(555) 010-2030" is "555-010-2030".
    pub phone: Option<String>,
    /// super_admin only: erase in this dealership (absent: in every dealership). Ignored
    /// for a dealership_admin, who erases in their own.
    pub dealership_id: Option<String>,
}

/// What was deleted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Erased {
    /// Conversations deleted.
    pub sessions: u64,
    /// Of those, conversations that were live and were ended first.
    pub live_sessions_ended: u64,
    /// Turns deleted with them.
    pub turns: u64,
    /// Lead emails deleted (with the conversations or naming the details).
    pub lead_emails: u64,
}

/// Deletes every conversation that mentions the caller's email address or phone number,
/// and the lead emails about them.
#[utoipa::path(post, path = "/v1/privacy/erase", tag = "privacy", security(("bearer" = [])),
    request_body = EraseRequest,
    responses((status = 200, body = Erased), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id))]
pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<EraseRequest>,
) -> Result<Json<Erased>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let contact = Contact::new(req.email.as_deref(), req.phone.as_deref())
        .map_err(|(field, problem)| ApiError::validation(field, problem))?;
    let tenant = principal.list_scope(req.dealership_id.as_deref());
    if let Tenant::Only(id) = tenant {
        dealerships::get(&state.db, tenant, id)
            .await?
            .ok_or(ApiError::NotFound)?;
    }

    let (session_ids, orphan_leads) = find(&state.db, tenant, &contact).await?;
    let mut found = Vec::new();
    for id in &session_ids {
        if let Some(session) = sessions::get(&state.db, tenant, None, id).await? {
            found.push(session);
        }
    }
    // End every live one before deleting anything: a node that does not answer fails the
    // request (504) with nothing deleted, and it can be repeated.
    let mut live_sessions_ended = 0;
    for session in found.iter().filter(|s| s.ended_at.is_none()) {
        if end_live(&state, session, END_REASON).await? {
            live_sessions_ended += 1;
        }
    }
    // A turn still being written for an ended session finds no session and is not stored.
    let mut deleted = Deleted::default();
    for session in &found {
        deleted += privacy::delete_session(&state.db, tenant, &session.id).await?;
    }
    for id in &orphan_leads {
        if privacy::delete_lead(&state.db, tenant, id).await? {
            deleted.lead_emails += 1;
        }
    }
    // A cached answer remembers the question that was asked.
    state.realtime.shared.semantic.clear(tenant.filter());

    let erased = Erased {
        sessions: deleted.sessions,
        live_sessions_ended,
        turns: deleted.turns,
        lead_emails: deleted.lead_emails,
    };
    let mut details = contact.fingerprints();
    details["dealership_scope"] = tenant.filter().map_or("all".into(), Into::into);
    details["deleted"] = serde_json::json!({
        "sessions": erased.sessions,
        "live_sessions_ended": erased.live_sessions_ended,
        "turns": erased.turns,
        "lead_emails": erased.lead_emails,
    });
    let target = details["email_sha256"]
        .as_str()
        .or(details["phone_sha256"].as_str())
        .unwrap_or_default()
        .to_owned();
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: tenant.filter(),
            actor_user_id: Some(&principal.user_id),
            action: "privacy.erase",
            target_type: "contact",
            target_id: &target,
            details,
        },
        state.clock.now(),
    )
    .await?;
    tracing::info!(
        sessions = erased.sessions,
        live_sessions_ended,
        turns = erased.turns,
        lead_emails = erased.lead_emails,
        "erased a caller's conversations on request"
    );
    Ok(Json(erased))
}

/// The conversations that mention `contact` (in a turn, or in their lead email), and the
/// lead emails that mention it whose conversation is already gone.
async fn find(
    db: &Db,
    tenant: Tenant<'_>,
    contact: &Contact,
) -> Result<(BTreeSet<String>, BTreeSet<String>), sqlx::Error> {
    let mut filters = Vec::new();
    let words = contact.email_words();
    if let Some((a, b)) = &words {
        filters.push(Filter::Words(a, b));
    }
    if let Some(digits) = contact.phone_filter() {
        filters.push(Filter::Digits(digits));
    }
    let mentions =
        |c: &Candidate| contact.mentioned_in(&c.text) || contact.mentioned_in(&c.other_text);
    let mut sessions = BTreeSet::new();
    let mut orphan_leads = BTreeSet::new();
    for filter in filters {
        let mut after = String::new();
        loop {
            let page = privacy::turns_matching(db, tenant, filter, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            sessions.extend(
                page.iter()
                    .filter(|c| mentions(c))
                    .filter_map(|c| c.session_id.clone()),
            );
        }
        let mut after = String::new();
        loop {
            let page = privacy::leads_matching(db, tenant, filter, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for lead in page.into_iter().filter(|c| mentions(c)) {
                match lead.session_id {
                    Some(session) => sessions.insert(session),
                    None => orphan_leads.insert(lead.id),
                };
            }
        }
    }
    Ok((sessions, orphan_leads))
}
