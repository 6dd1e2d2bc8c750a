//! `/v1/dealerships/{id}/api-keys`: a dealership's server credentials for the
//! OpenAI-compatible realtime endpoint (scope `realtime`) and the management API (scope
//! `management`). The key is shown once, in the creation answer; Adam keeps its hash.
//! Admins of the dealership (and super_admin) manage them, with an access token only: a
//! key cannot mint or revoke keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::clock::rfc3339;
use crate::db::api_keys::{self, ApiKey};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::dealerships;
use crate::state::AppState;

const ADMINS: &[Role] = &[Role::SuperAdmin, Role::DealershipAdmin];
/// The scopes a key may carry.
pub const SCOPES: [&str; 2] = ["realtime", "management"];
/// Active keys a dealership may hold.
const MAX_ACTIVE: i64 = 50;

/// A new key's name and scopes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for ("Phone bridge").
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `realtime` (connect to `/v1/realtime`) and/or `management` (the REST API as a
    /// dealership_admin of this dealership); `["realtime"]` when absent.
    pub scopes: Option<Vec<String>>,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyOut {
    /// Id (for `DELETE`).
    pub id: String,
    /// Name.
    pub name: String,
    /// The key's first characters, to recognise it (`adam_sk_AbC123`).
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The user who created it (null once deleted).
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last use (to the minute); null: never used.
    pub last_used_at: Option<String>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        Self {
            scopes: k.scopes.split(',').map(str::to_owned).collect(),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
        }
    }
}

/// A freshly created key: the only time `key` is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key itself (`adam_sk_…`): store it now, Adam cannot show it again.
    pub key: String,
    /// Its description.
    #[serde(flatten)]
    pub api_key: ApiKeyOut,
}

fn validate(req: &CreateApiKey) -> Result<(String, Vec<&'static str>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation("name", "must be 1 to 100 characters"));
    }
    let requested = req
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["realtime".into()]);
    if requested.is_empty() {
        return Err(ApiError::validation("scopes", "name at least one scope"));
    }
    let mut scopes = Vec::new();
    for scope in &requested {
        let known = SCOPES
            .iter()
            .find(|s| **s == scope.as_str())
            .ok_or_else(|| {
                ApiError::validation(
                    "scopes",
                    format!("`{scope}` is not a scope: use realtime and/or management"),
                )
            })?;
        if !scopes.contains(known) {
            scopes.push(*known);
        }
    }
    Ok((name.to_owned(), scopes))
}

/// 403 for a request made with an API key: keys are managed with an access token only.
fn require_user(principal: &Principal) -> Result<(), ApiError> {
    principal.require(ADMINS)?;
    if principal.api_key_id.is_some() {
        return Err(ApiError::Denied {
            code: "api_key_not_allowed",
            message: "API keys are managed with a signed-in admin's access token, not with a key",
        });
    }
    Ok(())
}

/// Creates an API key; the answer is the only time the key is shown.
#[utoipa::path(post, path = "/v1/dealerships/{id}/api-keys", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    require_user(&principal)?;
    let (name, scopes) = validate(&req)?;
    dealerships::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if api_keys::count_active(&state.db, &id).await? >= MAX_ACTIVE {
        return Err(ApiError::validation(
            "name",
            format!("a dealership holds at most {MAX_ACTIVE} active keys: revoke one first"),
        ));
    }
    let now = state.clock.now();
    let key = api_keys::generate();
    let row = api_keys::insert(
        &state.db,
        &id,
        &name,
        &key,
        &scopes,
        &principal.user_id,
        now,
    )
    .await?;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&id),
            actor_user_id: Some(&principal.user_id),
            action: "api_key.create",
            target_type: "api_key",
            target_id: &row.id,
            details: serde_json::json!({"name": name, "scopes": scopes}),
        },
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key,
            api_key: row.into(),
        }),
    ))
}

/// The dealership's active API keys (without the keys themselves).
#[utoipa::path(get, path = "/v1/dealerships/{id}/api-keys", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = [ApiKeyOut]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<ApiKeyOut>>, ApiError> {
    require_user(&principal)?;
    let tenant = principal.tenant();
    dealerships::get(&state.db, tenant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let keys = api_keys::list_active(&state.db, tenant, &id).await?;
    Ok(Json(keys.into_iter().map(ApiKeyOut::from).collect()))
}

/// Revokes an API key at once: live sessions it opened go on, new ones are refused.
#[utoipa::path(delete, path = "/v1/dealerships/{id}/api-keys/{key_id}", tag = "dealerships", security(("bearer" = [])),
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %key_id))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_user(&principal)?;
    let now = state.clock.now();
    if !api_keys::revoke(&state.db, principal.tenant(), &id, &key_id, now).await? {
        return Err(ApiError::NotFound);
    }
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: Some(&id),
            actor_user_id: Some(&principal.user_id),
            action: "api_key.revoke",
            target_type: "api_key",
            target_id: &key_id,
            details: serde_json::json!({}),
        },
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
