//! Authentication and authorization: roles, JWT access/refresh tokens, passwords,
//! login throttling, revoked access tokens and the [`Principal`] extractor every
//! protected route uses.

pub mod keyfile;
pub mod password;
pub mod principal;
pub mod revoked;
mod settings;
pub mod throttle;
pub mod tokens;

use serde::{Deserialize, Serialize};

pub use principal::Principal;
pub use settings::AuthSettings;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every dealership, platform settings.
    SuperAdmin,
    /// One dealership: its users, documents, sessions and settings.
    DealershipAdmin,
    /// Own sessions and profile.
    User,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::DealershipAdmin => "dealership_admin",
            Role::User => "user",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "super_admin" => Some(Role::SuperAdmin),
            "dealership_admin" => Some(Role::DealershipAdmin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}
