//! `/v1/users`: user management within the caller's tenant.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::normalize_email;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::sessions::{AccountEnd, end_user_sessions, sessions_to_end};
use crate::auth::{Principal, Role, password};
use crate::clock::rfc3339;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::users::{self, NewUser, User, UserPatch};
use crate::db::{Tenant, dealerships, is_unique_violation, tokens};
use crate::email::account;
use crate::state::AppState;

const ADMINS: &[Role] = &[Role::SuperAdmin, Role::DealershipAdmin];

/// A user as the API shows it (never the hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    /// Unique id of the user.
    pub id: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Dealership (null for super_admin).
    pub dealership_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            role: Role::parse(&u.role).unwrap_or(Role::User),
            id: u.id,
            email: u.email,
            dealership_id: u.dealership_id,
            display_name: u.display_name,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
        }
    }
}

/// New user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email, unique.
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// Initial password (8 characters to 72 bytes); omit it with `invite: true`.
    #[schema(min_length = 8, max_length = 72)]
    pub password: Option<String>,
    /// Email the user a link to choose their own password instead (valid
    /// `email.invite_ttl_secs`, once).
    #[serde(default)]
    pub invite: bool,
    /// Role; a dealership_admin may only create `user` or `dealership_admin`.
    pub role: Role,
    /// Dealership; only a super_admin may choose it (others get their own).
    pub dealership_id: Option<String>,
    /// Display name.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: String,
}

/// Changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New display name.
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    /// New role (not your own; super_admin only grantable by a super_admin).
    pub role: Option<Role>,
    /// Disable (revokes their refresh tokens and ends their live conversations) or enable.
    pub disabled: Option<bool>,
    /// Set a new password (revokes their refresh tokens and ends their live conversations).
    /// A dealership_admin may not set another admin's password (403
    /// `peer_admin_password`): send them a reset email instead.
    #[schema(min_length = 8, max_length = 72)]
    pub password: Option<String>,
}

fn validate_email(email: &str) -> Result<(), ApiError> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(ApiError::validation(
            "email",
            "must be a valid email address",
        ))
    }
}

fn validate_display_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 200 {
        return Err(ApiError::validation(
            "display_name",
            "must be at most 200 characters",
        ));
    }
    Ok(())
}

/// List filter.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// Only this dealership's users (super_admin only; ignored for others).
    pub dealership_id: Option<String>,
}

/// Users of the caller's dealership (all users for super_admin).
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = [UserOut]), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<UserQuery>,
) -> Result<Json<Vec<UserOut>>, ApiError> {
    principal.require(ADMINS)?;
    let users = users::list(&state.db, principal.list_scope(q.dealership_id.as_deref())).await?;
    Ok(Json(users.into_iter().map(UserOut::from).collect()))
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = UserOut), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateUser>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    principal.require(ADMINS)?;
    let email = normalize_email(&req.email);
    validate_email(&email)?;
    validate_display_name(&req.display_name)?;
    let initial_password = match (req.password, req.invite) {
        (Some(p), false) => {
            password::check_rules(&p)
                .map_err(|e| ApiError::validation("password", e.to_string()))?;
            p
        }
        (None, true) => {
            // Nobody knows it: the user chooses their own with the invitation link.
            format!("{}{}", password::generate(), password::generate())
        }
        (Some(_), true) => {
            return Err(ApiError::validation(
                "password",
                "must be absent when invite is true",
            ));
        }
        (None, false) => {
            return Err(ApiError::validation(
                "password",
                "is required unless invite is true",
            ));
        }
    };
    if req.role == Role::SuperAdmin && !principal.is_super() {
        return Err(ApiError::Forbidden);
    }
    // The tenant comes from the token; only a super_admin may pick a dealership.
    let dealership_id = if principal.is_super() {
        match (req.role, req.dealership_id) {
            (Role::SuperAdmin, None) => None,
            (Role::SuperAdmin, Some(_)) => {
                return Err(ApiError::validation(
                    "dealership_id",
                    "must be empty for super_admin",
                ));
            }
            (_, None) => {
                return Err(ApiError::validation(
                    "dealership_id",
                    "is required for this role",
                ));
            }
            (_, Some(id)) => {
                dealerships::get(&state.db, Tenant::All, &id)
                    .await?
                    .ok_or_else(|| ApiError::validation("dealership_id", "no such dealership"))?;
                Some(id)
            }
        }
    } else {
        principal.dealership_id.clone()
    };
    let hash = password::hash(initial_password, &state.metrics.password_hashes).await?;
    let now = state.clock.now();
    let new = NewUser {
        email,
        password_hash: hash,
        role: req.role.as_str().to_owned(),
        dealership_id,
        display_name: req.display_name.trim().to_owned(),
    };
    let user = match users::insert(&state.db, new, now).await {
        Ok(user) => user,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "a user with this email already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&principal.user_id),
            action: "user.create",
            target_type: "user",
            target_id: &user.id,
            details: serde_json::json!({"email": user.email, "role": user.role, "invited": req.invite}),
        },
        now,
    )
    .await?;
    if req.invite {
        let inviter = users::get(&state.db, Tenant::All, &principal.user_id).await?;
        let inviter = inviter.map(|u| inviter_name(&u));
        account::send_invite(&state.email, &user, inviter.as_deref()).await?;
    }
    Ok((StatusCode::CREATED, Json(UserOut::from(user))))
}

/// How an invitation names the admin who sent it.
fn inviter_name(admin: &User) -> String {
    if admin.display_name.is_empty() {
        admin.email.clone()
    } else {
        format!("{} ({})", admin.display_name, admin.email)
    }
}

/// The answer to sending an invitation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InviteSent {
    /// Id of the queued email (`email_outbox`).
    pub email_id: String,
}

/// Emails the user a new link to choose their password (an invitation sent again, or
/// an admin's answer to a forgotten password). Earlier links keep working until one is
/// used or they expire.
#[utoipa::path(post, path = "/v1/users/{id}/invite", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = InviteSent), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn invite(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<InviteSent>), ApiError> {
    principal.require(ADMINS)?;
    let user = users::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if user.disabled {
        return Err(ApiError::Conflict(
            "the user is disabled; enable them first".into(),
        ));
    }
    let inviter = users::get(&state.db, Tenant::All, &principal.user_id).await?;
    let inviter = inviter.map(|u| inviter_name(&u));
    let email_id = account::send_invite(&state.email, &user, inviter.as_deref()).await?;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&principal.user_id),
            action: "user.invite",
            target_type: "user",
            target_id: &user.id,
            details: serde_json::json!({"email": user.email}),
        },
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(InviteSent { email_id })))
}

/// The answer to sending a password-reset email.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetSent {
    /// Id of the queued email (`email_outbox`).
    pub email_id: String,
}

/// Emails the user a link to choose a new password (valid `email.reset_ttl_secs`, once):
/// how an admin helps another admin, whose password they may not set. Their current
/// password keeps working until the link is used. Each address gets at most
/// `email.reset_max_per_email` reset emails per `email.reset_window_secs`.
#[utoipa::path(post, path = "/v1/users/{id}/password-reset", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = ResetSent), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the user is disabled"),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn password_reset(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ResetSent>), ApiError> {
    principal.require(ADMINS)?;
    let user = users::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if user.disabled {
        return Err(ApiError::Conflict(
            "the user is disabled; enable them first".into(),
        ));
    }
    if let Err(wait) = state.email.throttle_reset(&user.email) {
        state
            .metrics
            .rate_limited
            .with_label_values(&["password_reset"])
            .inc();
        return Err(ApiError::TooManyRequests {
            retry_after: wait as u64,
        });
    }
    let email_id = account::send_password_reset_to(&state.email, &user).await?;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&principal.user_id),
            action: "user.password_reset_email",
            target_type: "user",
            target_id: &user.id,
            details: serde_json::json!({"email": user.email}),
        },
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(ResetSent { email_id })))
}

/// One user of the caller's tenant.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, ApiError> {
    principal.require(ADMINS)?;
    let user = users::get(&state.db, principal.tenant(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(UserOut::from(user)))
}

/// Changes a user's name, role, password or disabled flag. Disabling a user or setting
/// their password ends their live conversations (close reason `account disabled` or
/// `password changed`). A dealership_admin may not set another admin's password.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserOut),
              (status = 403, body = ErrorBody, description = "forbidden; peer_admin_password: a dealership_admin setting another admin's password; own_password: your own password (use PATCH /v1/me)"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> Result<Json<UserOut>, ApiError> {
    principal.require(ADMINS)?;
    let tenant = principal.tenant();
    let existing = users::get(&state.db, tenant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(role) = req.role {
        if id == principal.user_id && role != principal.role {
            return Err(ApiError::Forbidden);
        }
        if role == Role::SuperAdmin && !principal.is_super() {
            return Err(ApiError::Forbidden);
        }
        // Super admins have no dealership and dealership roles need one (DB CHECK).
        let was_super = existing.role == Role::SuperAdmin.as_str();
        if (role == Role::SuperAdmin) != was_super {
            return Err(ApiError::validation(
                "role",
                "cannot move a user between super_admin and dealership roles; create a new user",
            ));
        }
    }
    if req.disabled == Some(true) && id == principal.user_id {
        return Err(ApiError::Forbidden);
    }
    // One's own password changes only with the current one (PATCH /v1/me): a stolen
    // access token must not be enough to take the account over for good.
    if req.password.is_some() && id == principal.user_id {
        return Err(ApiError::Denied {
            code: "own_password",
            message: "change your own password with PATCH /v1/me, giving the current one",
        });
    }
    // Whoever knows a password they chose can sign in as that admin: between peers, the
    // owner chooses it, from an emailed link.
    let target_is_admin = existing.role != Role::User.as_str();
    if req.password.is_some()
        && principal.role == Role::DealershipAdmin
        && target_is_admin
        && id != principal.user_id
    {
        return Err(ApiError::Denied {
            code: "peer_admin_password",
            message: "a dealership_admin cannot set another admin's password; \
                      send them a reset link with POST /v1/users/{id}/password-reset",
        });
    }
    if let Some(name) = &req.display_name {
        validate_display_name(name)?;
    }
    let password_hash = match req.password {
        Some(p) => {
            password::check_rules(&p)
                .map_err(|e| ApiError::validation("password", e.to_string()))?;
            Some(password::hash(p, &state.metrics.password_hashes).await?)
        }
        None => None,
    };
    let revoke = password_hash.is_some() || req.disabled == Some(true);
    let patch = UserPatch {
        display_name: req.display_name.map(|n| n.trim().to_owned()),
        role: req.role.map(|r| r.as_str().to_owned()),
        disabled: req.disabled,
        password_hash,
    };
    let now = state.clock.now();
    let user = users::update(&state.db, tenant, &id, &patch, now)
        .await?
        .ok_or(ApiError::NotFound)?;
    if revoke {
        tokens::revoke_user(&state.db, &user.id, now).await?;
        // Their open conversations end with their access.
        let why = if req.disabled == Some(true) {
            AccountEnd::Disabled
        } else {
            AccountEnd::PasswordChanged
        };
        let elsewhere = sessions_to_end(&state, &user.id).await;
        end_user_sessions(&state, &user.id, why, elsewhere).await;
    }
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&principal.user_id),
            action: "user.update",
            target_type: "user",
            target_id: &user.id,
            details: serde_json::json!({
                "role": patch.role, "disabled": patch.disabled,
                "display_name": patch.display_name, "password_changed": patch.password_hash.is_some(),
            }),
        },
        now,
    )
    .await?;
    Ok(Json(UserOut::from(user)))
}

/// Deletes a user (not yourself); their live conversations end (`account deleted`).
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(actor = %principal.user_id, target = %id))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(ADMINS)?;
    let tenant = principal.tenant();
    let user = users::get(&state.db, tenant, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if id == principal.user_id {
        return Err(ApiError::Forbidden);
    }
    // Read first: deleting the user forgets whose their recorded sessions were.
    let elsewhere = sessions_to_end(&state, &id).await;
    if !users::delete(&state.db, tenant, &id).await? {
        return Err(ApiError::NotFound);
    }
    end_user_sessions(&state, &id, AccountEnd::Deleted, elsewhere).await;
    audit::record(
        &state.db,
        NewAuditEntry {
            dealership_id: user.dealership_id.as_deref(),
            actor_user_id: Some(&principal.user_id),
            action: "user.delete",
            target_type: "user",
            target_id: &id,
            details: serde_json::json!({"email": user.email}),
        },
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
