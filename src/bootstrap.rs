//! First run: on an empty database, create the demo dealership and a super_admin.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::{Role, password};
use crate::db::dealerships::{self, NewDealership};
use crate::db::users::{self, NewUser};
use crate::db::{Db, Tenant};
use crate::settings::Settings;

/// What the first run created, for the CLI to print once.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The super_admin's email.
    pub admin_email: String,
    /// Set when the password was generated (not configured): show it once.
    pub generated_password: Option<String>,
    /// The demo dealership's id.
    pub dealership_id: String,
}

/// Creates the first dealership and super_admin when there are no users yet.
pub async fn run(db: &Db, settings: &Settings, now: i64) -> anyhow::Result<Option<Bootstrapped>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let dealership = match dealerships::list(db, Tenant::All).await?.into_iter().next() {
        Some(d) => d,
        None => {
            dealerships::insert(
                db,
                NewDealership {
                    name: settings.bootstrap.dealership_name.clone(),
                    allowed_origins: serde_json::to_string(&settings.http.cors_allowed_origins)?,
                    persona: dealerships::DEFAULT_PERSONA.into(),
                    voice: "default".into(),
                    avatar: "{}".into(),
                    lead_email: None,
                },
                now,
            )
            .await?
        }
    };
    let (plain, generated) = match &settings.bootstrap.admin_password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (password::generate(), true),
    };
    password::check_rules(&plain).map_err(|e| anyhow::anyhow!("bootstrap.admin_password {e}"))?;
    let email = settings.bootstrap.admin_email.trim().to_lowercase();
    users::insert(
        db,
        NewUser {
            email: email.clone(),
            password_hash: password::hash(plain.clone(), &password::HashCounter::none()).await?,
            role: Role::SuperAdmin.as_str().into(),
            dealership_id: None,
            display_name: "Administrator".into(),
        },
        now,
    )
    .await?;
    Ok(Some(Bootstrapped {
        admin_email: email,
        generated_password: generated.then_some(plain),
        dealership_id: dealership.id,
    }))
}

/// `[bootstrap]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Name of the demo dealership created on an empty database.
    pub dealership_name: String,
    /// Email of the first super_admin.
    pub admin_email: String,
    /// Password of the first super_admin; from the environment only.
    #[serde(skip_serializing)]
    pub admin_password: Option<SecretString>,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self {
            dealership_name: "Demo Motors".into(),
            admin_email: "admin@adam.local".into(),
            admin_password: None,
        }
    }
}

impl BootstrapSettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.admin_email.trim().is_empty() || !self.admin_email.contains('@') {
            return Err(("bootstrap.admin_email", "must be an email address".into()));
        }
        Ok(())
    }
}
