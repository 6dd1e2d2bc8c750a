//! The signed-in caller, extracted from `Authorization: Bearer …` on every protected
//! route. The tenant comes from here and nowhere else.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Role;
use super::tokens::TokenUse;
use crate::api::error::ApiError;
use crate::db::{Tenant, api_keys, users};
use crate::state::AppState;

/// An authenticated user, re-checked against the database on each request so that a
/// disabled user, a changed password or a logout takes effect at once.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Current role.
    pub role: Role,
    /// Dealership (none for super_admin).
    pub dealership_id: Option<String>,
    /// The dealership API key (scope `management`) the request came with, if it was one
    /// rather than an access token: it acts as a dealership_admin of its dealership on
    /// behalf of the user who created it.
    pub api_key_id: Option<String>,
}

impl Principal {
    /// The rows this caller may see: all for super_admin, else their dealership's.
    pub fn tenant(&self) -> Tenant<'_> {
        match (&self.role, &self.dealership_id) {
            (Role::SuperAdmin, _) => Tenant::All,
            (_, Some(d)) => Tenant::Only(d),
            // A non-super user always has a dealership (database CHECK); see nothing otherwise.
            (_, None) => Tenant::Only(""),
        }
    }

    /// The tenant for a list: a super_admin may narrow it to one dealership with a
    /// `dealership_id` query parameter; anyone else's request for one is ignored.
    pub fn list_scope<'a>(&'a self, requested: Option<&'a str>) -> Tenant<'a> {
        match requested {
            Some(id) if self.is_super() => Tenant::Only(id),
            _ => self.tenant(),
        }
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// True for super_admin.
    pub fn is_super(&self) -> bool {
        self.role == Role::SuperAdmin
    }
}

/// The raw bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_in(&parts.headers)
}

/// The raw bearer token of `Authorization` in these headers, if any.
pub fn bearer_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Verifies an access token, that it was not ended by a logout, and re-checks its user;
/// or a dealership API key with the `management` scope. The tenant comes from here only.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let now = state.clock.now();
    if token.starts_with(api_keys::KEY_PREFIX) {
        let key = api_keys::authenticate(&state.db, token, now)
            .await?
            .filter(|k| k.has_scope("management"))
            .ok_or(ApiError::Unauthorized)?;
        return key_principal(state, key).await;
    }
    let claims = state
        .tokens
        .verify(token, TokenUse::Access, now)
        .map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            ApiError::Unauthorized
        })?;
    if state.revoked_tokens.is_revoked(&claims.jti).await {
        tracing::debug!("access token refused: logged out");
        return Err(ApiError::Unauthorized);
    }
    let user = users::get(&state.db, Tenant::All, &claims.sub)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let role = Role::parse(&user.role).ok_or(ApiError::Unauthorized)?;
    let stale = user.disabled
        || claims.iat < user.password_changed_at
        || claims.role != Some(role)
        || claims.dealership_id != user.dealership_id;
    if stale {
        return Err(ApiError::Unauthorized);
    }
    Ok(Principal {
        user_id: user.id,
        email: user.email,
        role,
        dealership_id: user.dealership_id,
        api_key_id: None,
    })
}

/// The principal of a management key: a dealership_admin of the key's dealership, acting
/// for the user who created the key, who must still be enabled and still an admin of it
/// (a key does not outlive its creator's demotion).
async fn key_principal(state: &AppState, key: api_keys::ApiKey) -> Result<Principal, ApiError> {
    let creator = key.created_by.as_deref().ok_or(ApiError::Unauthorized)?;
    let user = users::get(&state.db, Tenant::All, creator)
        .await?
        .filter(|u| !u.disabled)
        .filter(|u| match Role::parse(&u.role) {
            Some(Role::SuperAdmin) => true,
            Some(Role::DealershipAdmin) => u.dealership_id.as_deref() == Some(&key.dealership_id),
            _ => false,
        })
        .ok_or(ApiError::Unauthorized)?;
    Ok(Principal {
        user_id: user.id,
        email: user.email,
        role: Role::DealershipAdmin,
        dealership_id: Some(key.dealership_id),
        api_key_id: Some(key.id),
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        authenticate(state, token).await
    }
}
