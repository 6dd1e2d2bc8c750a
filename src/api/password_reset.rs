//! `/v1/auth/password-reset`: "forgot my password" emails, and setting a password with
//! the one-time token of a reset or invitation link (see [`crate::email::account`]).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::normalize_email;
use super::error::{ApiError, ErrorBody};
use super::extract::{ClientIp, Json};
use super::sessions::{AccountEnd, end_user_sessions, sessions_to_end};
use crate::auth::password;
use crate::db::audit::{self, NewAuditEntry};
use crate::email::account::{self, Purpose};
use crate::middleware::limit_password_reset_confirm;
use crate::state::AppState;

/// The same answer for every address, so it tells nothing about which have accounts.
const ACCEPTED: &str =
    "If an account uses this address, a link to choose a new password is on its way.";

/// Reset request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email (case-insensitive).
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

/// The answer to a reset request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetAccepted {
    /// Always the same text.
    pub message: &'static str,
}

/// Setting a password with a link's token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The `token` of the link (invitation or password reset).
    pub token: String,
    /// The new password (8 characters to 72 bytes).
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
}

/// Emails a password-reset link if an account uses this address. The answer is the
/// same, and comes as fast, whether or not one does: the lookup and the email happen
/// after it.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = ResetAccepted), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn request(
    State(state): State<AppState>,
    Json(req): Json<ResetRequest>,
) -> Result<(StatusCode, Json<ResetAccepted>), ApiError> {
    let email = normalize_email(&req.email);
    if email.is_empty() || email.len() > 254 || !email.contains('@') {
        return Err(ApiError::validation("email", "must be an email address"));
    }
    if let Err(wait) = state.email.throttle_reset(&email) {
        state
            .metrics
            .rate_limited
            .with_label_values(&["password_reset"])
            .inc();
        return Err(ApiError::TooManyRequests {
            retry_after: wait as u64,
        });
    }
    let mailer = state.email.clone();
    tokio::spawn(async move {
        if let Err(e) = account::send_password_reset(&mailer, &email).await {
            tracing::error!(error = ?anyhow::Error::from(e), "password-reset email not queued");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetAccepted { message: ACCEPTED }),
    ))
}

/// Sets the password of the user a reset or invitation link was sent to. The link
/// stops working, as does every other link of that user, every refresh token of theirs
/// is revoked and their live conversations end. The token is checked before the password
/// is hashed, so a request with a bad token costs no bcrypt; requests are limited per
/// client IP (`rate_limit.password_reset_confirm_*`).
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody, description = "token_invalid, token_used or token_expired"),
              (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many confirmations from this address; see Retry-After")))]
#[tracing::instrument(skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    limit_password_reset_confirm(&state, ip).await?;
    password::check_rules(&req.password)
        .map_err(|e| ApiError::validation("password", e.to_string()))?;
    let now = state.clock.now();
    let (link, user) = account::check(&state.db, &req.token, now)
        .await?
        .map_err(ApiError::Link)?;
    // Only a live link gets the (slow) hash; it is spent together with the password change,
    // so a slow hash never leaves a spent token and an unchanged password.
    let hash = password::hash(req.password, &state.metrics.password_hashes).await?;
    let now = state.clock.now();
    account::set_password(&state.db, &link, &hash, now)
        .await?
        .map_err(ApiError::Link)?;
    let elsewhere = sessions_to_end(&state, &user.id).await;
    end_user_sessions(&state, &user.id, AccountEnd::PasswordChanged, elsewhere).await;
    let action = if link.purpose == Purpose::Invite.as_str() {
        "user.invite_accept"
    } else {
        "user.password_reset"
    };
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&user.id),
            action,
            target_type: "user",
            target_id: &user.id,
            details: serde_json::json!({}),
        },
        now,
    )
    .await?;
    tracing::info!(user_id = %user.id, action, "password set with a one-time link");
    Ok(StatusCode::NO_CONTENT)
}
