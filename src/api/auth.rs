//! `/v1/auth/*` and `/v1/me`: login, refresh-token rotation with reuse detection,
//! logout, and the caller's own profile.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, Json};
use super::sessions::{AccountEnd, end_user_sessions, sessions_to_end};
use super::users::UserOut;
use crate::auth::principal::bearer_in;
use crate::auth::tokens::TokenUse;
use crate::auth::{Principal, Role, password};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::tokens::{self, RefreshToken};
use crate::db::users::{self, User, UserPatch};
use crate::db::{Tenant, new_id};
use crate::state::AppState;

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email (case-insensitive).
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// Password (at most 72 bytes).
    pub password: String,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// JWT to exchange at `/v1/auth/refresh`; rotates on each use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Refresh request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The current refresh token.
    pub refresh_token: String,
}

/// Logout request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// The current refresh token: its whole family is revoked.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Changes to the caller's own profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// New display name.
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// Required to change the password.
    pub current_password: Option<String>,
    /// New password; every refresh token of the user is revoked and their live
    /// conversations end.
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: Option<String>,
}

/// Normalises an email for lookup and storage.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

async fn issue_pair(
    state: &AppState,
    user: &User,
    family_id: &str,
    login_at: i64,
) -> Result<TokenResponse, ApiError> {
    let now = state.clock.now();
    let role = Role::parse(&user.role)
        .ok_or_else(|| anyhow::anyhow!("stored role {} unknown", user.role))?;
    let row = RefreshToken {
        id: new_id(),
        family_id: family_id.to_owned(),
        user_id: user.id.clone(),
        login_at,
        issued_at: now,
        expires_at: login_at + state.tokens.refresh_ttl,
        rotated_at: None,
        revoked_at: None,
    };
    tokens::insert(&state.db, &row).await?;
    Ok(TokenResponse {
        access_token: state.tokens.issue_access(
            &user.id,
            role,
            user.dealership_id.as_deref(),
            login_at,
            now,
        ),
        refresh_token: state
            .tokens
            .issue_refresh(&user.id, &row.id, family_id, login_at, now),
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl,
    })
}

/// Exchanges email and password for a token pair.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = normalize_email(&req.email);
    if email.is_empty() {
        return Err(ApiError::validation("email", "must not be empty"));
    }
    if req.password.len() > password::MAX_PASSWORD_BYTES {
        return Err(ApiError::validation("password", "must be at most 72 bytes"));
    }
    if let Some(wait) = state.login_throttle.retry_after(&email, ip) {
        state
            .metrics
            .rate_limited
            .with_label_values(&["login"])
            .inc();
        return Err(ApiError::TooManyRequests {
            retry_after: wait as u64,
        });
    }
    let user = users::by_email(&state.db, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = password::verify(req.password, stored, &state.metrics.password_hashes).await?;
    let user = match user {
        Some(user) if matches && !user.disabled => user,
        _ => {
            state.login_throttle.record_failure(&email, ip);
            state.metrics.login_failures.inc();
            tracing::info!(%ip, "login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.login_throttle.record_success(&email, ip);
    let now = state.clock.now();
    let pair = issue_pair(&state, &user, &new_id(), now).await?;
    tracing::info!(user_id = %user.id, "login");
    Ok(Json(pair))
}

/// Rotates a refresh token: the old one dies; replaying a rotated one revokes the family.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let now = state.clock.now();
    let claims = state
        .tokens
        .verify(&req.refresh_token, TokenUse::Refresh, now)
        .map_err(|_| ApiError::Unauthorized)?;
    let row = tokens::get(&state.db, &claims.jti)
        .await?
        .filter(|row| row.user_id == claims.sub)
        .ok_or(ApiError::Unauthorized)?;
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(ApiError::Unauthorized);
    }
    if row.rotated_at.is_some() {
        // A token that was already exchanged came back: it was stolen or replayed.
        // Kill the whole family, so the thief's copy dies with the owner's.
        let revoked = tokens::revoke_family(&state.db, &row.family_id, now).await?;
        state.metrics.refresh_reuse.inc();
        tracing::warn!(user_id = %row.user_id, family = %row.family_id, revoked, "refresh token reuse; family revoked");
        return Err(ApiError::Unauthorized);
    }
    if !tokens::mark_rotated(&state.db, &row.id, now).await? {
        // Two requests raced with the same live token; the other one won. Only one
        // may get a new pair. A later replay of this token is caught above.
        return Err(ApiError::Unauthorized);
    }
    let user = users::get(&state.db, Tenant::All, &row.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(
        issue_pair(&state, &user, &row.family_id, row.login_at).await?,
    ))
}

/// Ends a sign-in: revokes the refresh token's whole family, and denies the access token
/// sent in `Authorization: Bearer` (if any, and valid) until it expires, on every node.
/// Always 204, so it is safe to repeat.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = LogoutRequest,
    security((), ("bearer" = [])),
    responses((status = 204, description = "The refresh token's family is revoked and the bearer access token, if any, refused from now on")))]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    if let Some(refresh) = &req.refresh_token
        && let Ok(claims) = state.tokens.verify(refresh, TokenUse::Refresh, now)
        && let Some(family) = claims.family_id
    {
        tokens::revoke_family(&state.db, &family, now).await?;
    }
    if let Some(access) = bearer_in(&headers)
        && let Ok(claims) = state.tokens.verify(access, TokenUse::Access, now)
    {
        // Refused until its expiry (and the verification's leeway), then it dies anyway.
        let until = claims.exp + state.settings.auth.leeway_secs;
        state.revoked_tokens.revoke(&claims.jti, until).await;
        tracing::info!(user_id = %claims.sub, "access token revoked at logout");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<UserOut>, ApiError> {
    let user = users::get(&state.db, Tenant::All, &principal.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(UserOut::from(user)))
}

/// Updates the caller's display name or password (which revokes every refresh token and
/// ends the caller's live conversations, close reason `password changed`).
#[utoipa::path(patch, path = "/v1/me", tag = "auth", security(("bearer" = [])), request_body = MePatch,
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn patch_me(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<MePatch>,
) -> Result<Json<UserOut>, ApiError> {
    let mut patch = UserPatch {
        display_name: req.display_name.map(|n| n.trim().to_owned()),
        ..UserPatch::default()
    };
    if let Some(name) = &patch.display_name
        && name.chars().count() > 200
    {
        return Err(ApiError::validation(
            "display_name",
            "must be at most 200 characters",
        ));
    }
    if let Some(new_password) = req.new_password {
        password::check_rules(&new_password)
            .map_err(|e| ApiError::validation("new_password", e.to_string()))?;
        let current = req.current_password.ok_or_else(|| {
            ApiError::validation("current_password", "is required to change the password")
        })?;
        let user = users::get(&state.db, Tenant::All, &principal.user_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if !password::verify(
            current,
            Some(user.password_hash),
            &state.metrics.password_hashes,
        )
        .await?
        {
            return Err(ApiError::validation("current_password", "is incorrect"));
        }
        patch.password_hash =
            Some(password::hash(new_password, &state.metrics.password_hashes).await?);
    }
    let now = state.clock.now();
    let user = users::update(&state.db, Tenant::All, &principal.user_id, &patch, now)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if patch.password_hash.is_some() {
        tokens::revoke_user(&state.db, &user.id, now).await?;
        let elsewhere = sessions_to_end(&state, &user.id).await;
        end_user_sessions(&state, &user.id, AccountEnd::PasswordChanged, elsewhere).await;
        audit::record(
            &state.db,
            NewAuditEntry {
                dealership_id: user.dealership_id.as_deref(),
                actor_user_id: Some(&principal.user_id),
                action: "user.password_change",
                target_type: "user",
                target_id: &user.id,
                details: serde_json::json!({}),
            },
            now,
        )
        .await?;
    }
    Ok(Json(UserOut::from(user)))
}
