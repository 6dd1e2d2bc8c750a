//! JWT access and refresh tokens: HS256 pinned, `iss`/`aud`/`exp` required, a small
//! explicit leeway, and a `token_use` claim so one kind never passes for the other.
//! Expiry is checked against the injectable [`Clock`], not the system time.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::settings::AuthSettings;

/// Which kind of token this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    /// Bearer token for API calls (30 min).
    Access,
    /// Exchanged at `/v1/auth/refresh` for a new pair (7 days from login).
    Refresh,
}

/// Claims of both token kinds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Token id (refresh: the row id).
    pub jti: String,
    /// Access or refresh.
    pub token_use: TokenUse,
    /// When the login happened.
    pub auth_time: i64,
    /// Role at issue time (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Dealership at issue time (access tokens; none for super_admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealership_id: Option<String>,
    /// Refresh family (refresh tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<String>,
}

/// Why a token was refused. The client only ever sees 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, algorithm, structure, issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Past `exp` (plus leeway), or before `nbf`.
    #[error("token expired or not yet valid")]
    Expired,
    /// An access token where a refresh token was expected, or the reverse.
    #[error("wrong token use")]
    WrongUse,
}

/// Issues and verifies tokens with one HS256 key.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Access token lifetime, seconds.
    pub access_ttl: i64,
    /// Refresh lifetime from login, seconds.
    pub refresh_ttl: i64,
    leeway: i64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// Builds the service from the key and the `[auth]` settings.
    pub fn new(secret: &SecretString, settings: &AuthSettings) -> Self {
        let key = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        // Time claims are checked in `verify` against our clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl_secs,
            refresh_ttl: settings.refresh_ttl_secs,
            leeway: settings.leeway_secs,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        // HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// A 30-minute access token.
    pub fn issue_access(
        &self,
        user_id: &str,
        role: Role,
        dealership_id: Option<&str>,
        auth_time: i64,
        now: i64,
    ) -> String {
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.access_ttl,
            jti: uuid::Uuid::new_v4().to_string(),
            token_use: TokenUse::Access,
            auth_time,
            role: Some(role),
            dealership_id: dealership_id.map(str::to_owned),
            family_id: None,
        })
    }

    /// A refresh token expiring `refresh_ttl` after the login, however often it rotates.
    pub fn issue_refresh(
        &self,
        user_id: &str,
        token_id: &str,
        family_id: &str,
        login_at: i64,
        now: i64,
    ) -> String {
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat: now,
            nbf: now,
            exp: login_at + self.refresh_ttl,
            jti: token_id.to_owned(),
            token_use: TokenUse::Refresh,
            auth_time: login_at,
            role: None,
            dealership_id: None,
            family_id: Some(family_id.to_owned()),
        })
    }

    /// Verifies signature, algorithm, issuer, audience, time window and use.
    pub fn verify(&self, token: &str, expected: TokenUse, now: i64) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.exp + self.leeway <= now || claims.nbf - self.leeway > now {
            return Err(TokenError::Expired);
        }
        if claims.token_use != expected {
            return Err(TokenError::WrongUse);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(
            &SecretString::from("k".repeat(40)),
            &AuthSettings::default(),
        )
    }

    #[test]
    fn access_round_trip_and_use_is_enforced() {
        let s = service();
        let t = s.issue_access("u1", Role::User, Some("d1"), 100, 100);
        let c = s.verify(&t, TokenUse::Access, 101).expect("valid");
        assert_eq!(c.sub, "u1");
        assert_eq!(c.dealership_id.as_deref(), Some("d1"));
        assert_eq!(
            s.verify(&t, TokenUse::Refresh, 101).map(|_| ()),
            Err(TokenError::WrongUse)
        );
    }

    #[test]
    fn expiry_honours_the_leeway() {
        let s = service();
        let t = s.issue_access("u1", Role::User, None, 0, 1000);
        assert!(s.verify(&t, TokenUse::Access, 1000 + 1800 + 4).is_ok());
        assert_eq!(
            s.verify(&t, TokenUse::Access, 1000 + 1800 + 5).map(|_| ()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refresh_expiry_is_absolute_from_login() {
        let s = service();
        let login = 1_000;
        let later = login + 6 * 24 * 3600;
        let t = s.issue_refresh("u1", "t1", "f1", login, later);
        let c = s.verify(&t, TokenUse::Refresh, later).expect("valid");
        assert_eq!(c.exp, login + 7 * 24 * 3600);
    }
}
