//! Lead emails: when a conversation ends with a visitor who wants to be contacted, the
//! dealership hears about it at its lead address (`lead_email`), with the summary, the
//! contact details and a link to the transcript in the admin pages. Deciding that a
//! conversation is a lead, and extracting the details, is the caller's business.

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{EmailError, Mailer};
use crate::clock::rfc3339;
use crate::db::{Tenant, dealerships, sessions};

/// What the visitor told us about reaching them; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    /// Name.
    pub name: Option<String>,
    /// Phone number, as given.
    pub phone: Option<String>,
    /// Email address (also the lead email's Reply-To).
    pub email: Option<String>,
    /// When they would like a call back, as said ("tomorrow morning").
    pub callback: Option<String>,
    /// Anything else they asked to pass on.
    pub note: Option<String>,
}

/// Path of a session in the admin pages; the session id follows.
pub const SESSION_PATH: &str = "/admin/#/sessions/";

/// Queues an email about session `session_id` to dealership `dealership_id`'s lead
/// address. Returns the outbox id, or `None` when the dealership has no lead address.
/// [`EmailError::NotFound`] when the session is not one of that dealership's.
pub async fn queue_lead(
    mailer: &Mailer,
    dealership_id: &str,
    session_id: &str,
    summary: &str,
    contact: &LeadContact,
) -> Result<Option<String>, EmailError> {
    let tenant = Tenant::Only(dealership_id);
    let dealership = dealerships::get(mailer.db(), tenant, dealership_id)
        .await?
        .ok_or(EmailError::NotFound)?;
    let session = sessions::get(mailer.db(), tenant, None, session_id)
        .await?
        .ok_or(EmailError::NotFound)?;
    let Some(to) = dealership.lead_email.as_deref() else {
        tracing::info!(
            dealership_id,
            session_id,
            "lead not emailed: the dealership has no lead_email"
        );
        return Ok(None);
    };
    // A visitor's address is only a Reply-To when it looks like one.
    let reply_to = contact
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| e.parse::<lettre::Address>().is_ok());
    let session_url = mailer.url(&format!("{SESSION_PATH}{}", session.id));
    let context = context! {
        dealership => dealership.name,
        summary => summary.trim(),
        contact => minijinja::Value::from(minijinja::value::Serde(contact)),
        session_id => &session.id,
        session_url => session_url,
        created_at => rfc3339(session.started_at),
    };
    let id = mailer
        .queue_about_session("lead", context, to, reply_to, dealership_id, &session.id)
        .await?;
    Ok(Some(id))
}
