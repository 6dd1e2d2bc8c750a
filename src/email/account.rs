//! Invitation and password-reset emails. Both carry a one-time link to the admin's
//! set-password page, `{http.public_url}/admin/#/set-password?token=…&for=invite|reset`, whose page
//! sends the token with the new password to `POST /v1/auth/password-reset/confirm`.
//!
//! A token is 32 random bytes (base64url); only its SHA-256 is stored. It works once,
//! until it expires (`email.invite_ttl_secs`, `email.reset_ttl_secs`), and not at all
//! once the user's password changed after it was issued. Setting a password revokes
//! every other link of that user.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minijinja::context;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::templates::human_duration;
use super::{EmailError, Mailer};
use crate::db::user_tokens::{self, Lookup, Redeemed, UserToken};
use crate::db::users::{self, User};
use crate::db::{Db, Tenant, dealerships};

/// Path (and fragment) of the set-password page; the token follows.
pub const SET_PASSWORD_PATH: &str = "/admin/#/set-password?token=";

/// Longest token accepted; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 128;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new user chooses their first password.
    Invite,
    /// A user who forgot their password chooses a new one.
    PasswordReset,
}

impl Purpose {
    /// The stored name (also the email template's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::PasswordReset => "password_reset",
        }
    }

    fn ttl(self, mailer: &Mailer) -> i64 {
        match self {
            Purpose::Invite => mailer.settings().invite_ttl_secs,
            Purpose::PasswordReset => mailer.settings().reset_ttl_secs,
        }
    }
}

/// Why a link's token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Unknown, malformed, superseded by a later password change, or its user is gone
    /// or disabled.
    Invalid,
    /// Already used (or revoked when another link was used).
    Used,
    /// Past its lifetime.
    Expired,
}

impl LinkProblem {
    /// Stable error code.
    pub fn code(self) -> &'static str {
        match self {
            LinkProblem::Invalid => "token_invalid",
            LinkProblem::Used => "token_used",
            LinkProblem::Expired => "token_expired",
        }
    }

    /// Message for people.
    pub fn message(self) -> &'static str {
        match self {
            LinkProblem::Invalid => "this link is not valid; ask for a new one",
            LinkProblem::Used => "this link was already used; ask for a new one",
            LinkProblem::Expired => "this link has expired; ask for a new one",
        }
    }
}

/// SHA-256 of a token, hex: the only form in which tokens are stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Stores a new token for `user` and returns the link carrying it.
async fn issue_link(mailer: &Mailer, user: &User, purpose: Purpose) -> Result<String, EmailError> {
    let token = new_token();
    let now = mailer.now();
    user_tokens::insert(
        mailer.db(),
        &user.id,
        purpose.as_str(),
        &hash_token(&token),
        now,
        now + purpose.ttl(mailer),
    )
    .await?;
    // `for` tells the page which words to use; the token alone is the proof.
    let page_for = match purpose {
        Purpose::Invite => "invite",
        Purpose::PasswordReset => "reset",
    };
    Ok(mailer.url(&format!("{SET_PASSWORD_PATH}{token}&for={page_for}")))
}

/// Emails `user` an invitation to choose their password; `invited_by` names the admin.
/// Returns the outbox id.
pub async fn send_invite(
    mailer: &Mailer,
    user: &User,
    invited_by: Option<&str>,
) -> Result<String, EmailError> {
    let dealership = match &user.dealership_id {
        Some(id) => dealerships::get(mailer.db(), Tenant::All, id)
            .await?
            .map(|d| d.name),
        None => None,
    };
    let link = issue_link(mailer, user, Purpose::Invite).await?;
    let context = context! {
        display_name => user.display_name.clone(),
        dealership => dealership,
        invited_by => invited_by,
        link => link,
        expires_in => human_duration(Purpose::Invite.ttl(mailer)),
    };
    mailer
        .queue(
            Purpose::Invite.as_str(),
            context,
            &user.email,
            None,
            user.dealership_id.as_deref(),
        )
        .await
}

/// Emails a password-reset link to the account with this (normalised) address.
/// Nothing is sent, and `Ok(None)` returned, when no enabled account has it.
pub async fn send_password_reset(
    mailer: &Mailer,
    email: &str,
) -> Result<Option<String>, EmailError> {
    let Some(user) = users::by_email(mailer.db(), email)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(None);
    };
    send_password_reset_to(mailer, &user).await.map(Some)
}

/// Emails `user` a password-reset link (an admin's request for them). Returns the outbox id.
pub async fn send_password_reset_to(mailer: &Mailer, user: &User) -> Result<String, EmailError> {
    let link = issue_link(mailer, user, Purpose::PasswordReset).await?;
    let context = context! {
        display_name => user.display_name.clone(),
        link => link,
        expires_in => human_duration(Purpose::PasswordReset.ttl(mailer)),
    };
    mailer
        .queue(
            Purpose::PasswordReset.as_str(),
            context,
            &user.email,
            None,
            user.dealership_id.as_deref(),
        )
        .await
}

/// Checks a link's token without using it up: the token row and its user, or why it is
/// refused. Costs a lookup by hash, and nothing at all for a malformed token.
pub async fn check(
    db: &Db,
    token: &str,
    now: i64,
) -> Result<Result<(UserToken, User), LinkProblem>, sqlx::Error> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(Err(LinkProblem::Invalid));
    }
    let link = match user_tokens::lookup(db, &hash_token(token), now).await? {
        Lookup::Live(link) => link,
        Lookup::Unknown => return Ok(Err(LinkProblem::Invalid)),
        Lookup::Used => return Ok(Err(LinkProblem::Used)),
        Lookup::Expired => return Ok(Err(LinkProblem::Expired)),
    };
    let user = users::get(db, Tenant::All, &link.user_id)
        .await?
        // A password set after the link was sent (by its owner or an admin) retires it.
        .filter(|u| !u.disabled && link.created_at >= u.password_changed_at);
    Ok(match user {
        Some(user) => Ok((link, user)),
        None => Err(LinkProblem::Invalid),
    })
}

/// Uses up a link [`check`] accepted and sets its user's password to `password_hash`, in
/// one transaction that also revokes the user's other links and refresh tokens. Refused
/// (and nothing changed) when the link was used meanwhile, or its user changed.
pub async fn set_password(
    db: &Db,
    link: &UserToken,
    password_hash: &str,
    now: i64,
) -> Result<Result<(), LinkProblem>, sqlx::Error> {
    Ok(
        match user_tokens::redeem_with_password(db, link, password_hash, now).await? {
            Redeemed::Done => Ok(()),
            Redeemed::Gone => Err(LinkProblem::Used),
            Redeemed::Invalid => Err(LinkProblem::Invalid),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_stored_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let hash = hash_token(&a);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, a);
        assert_eq!(hash, hash_token(&a));
    }
}
