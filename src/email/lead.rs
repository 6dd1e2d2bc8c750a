//! Lead emails: when a conversation ends with a visitor who wants to be contacted, the
//! dealership hears about it at its lead address (`lead_email`), with the summary, the
//! contact details and a link to the transcript in the admin pages. Deciding that a
//! conversation is a lead, and extracting the details, is the caller's business.

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{EmailError, Mailer};
use crate::clock::rfc3339;
use crate::db::{Tenant, dealerships, outbox, sessions};

/// What the visitor told us about reaching them; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    /// Name, when one was given.
    pub name: Option<String>,
    /// Phone number, as given.
    pub phone: Option<String>,
    /// Email address (the lead email's Reply-To only in a signed-in user's conversation).
    pub email: Option<String>,
    /// When they would like a call back, as said ("tomorrow morning").
    pub callback: Option<String>,
    /// Anything else they asked to pass on.
    pub note: Option<String>,
}

/// Path of a session in the admin pages; the session id follows.
pub const SESSION_PATH: &str = "/admin/#/sessions/";

/// What became of a lead's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadEmail {
    /// Queued: the outbox id.
    Queued(String),
    /// The dealership has no lead address: nothing to send.
    NoLeadAddress,
    /// The dealership had `email.lead_max_per_hour` lead emails within the last hour:
    /// logged and counted, not sent.
    Throttled,
}

impl LeadEmail {
    /// The outbox id when the email was queued.
    pub fn queued(&self) -> Option<&str> {
        match self {
            LeadEmail::Queued(id) => Some(id),
            _ => None,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            LeadEmail::Queued(_) => "queued",
            LeadEmail::NoLeadAddress => "no_address",
            LeadEmail::Throttled => "throttled",
        }
    }
}

/// Seconds over which `email.lead_max_per_hour` counts a dealership's lead emails.
const LEAD_WINDOW_SECS: i64 = 3600;

/// Queues an email about session `session_id` to dealership `dealership_id`'s lead
/// address, unless the dealership has none or has had `email.lead_max_per_hour` lead
/// emails within the last hour (counted in the outbox, so across every node).
///
/// The visitor's details are what they said: in a conversation started with the public
/// embed key (no signed-in user) anybody can claim any address, so it is shown in the body
/// as unverified and never made the `Reply-To`. [`EmailError::NotFound`] when the session
/// is not one of that dealership's.
pub async fn queue_lead(
    mailer: &Mailer,
    dealership_id: &str,
    session_id: &str,
    summary: &str,
    contact: &LeadContact,
) -> Result<LeadEmail, EmailError> {
    let outcome = decide_and_queue(mailer, dealership_id, session_id, summary, contact).await?;
    mailer.count_lead(outcome.outcome());
    Ok(outcome)
}

async fn decide_and_queue(
    mailer: &Mailer,
    dealership_id: &str,
    session_id: &str,
    summary: &str,
    contact: &LeadContact,
) -> Result<LeadEmail, EmailError> {
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
        return Ok(LeadEmail::NoLeadAddress);
    };
    let max = mailer.settings().lead_max_per_hour;
    let recent = outbox::count_since(
        mailer.db(),
        "lead",
        dealership_id,
        mailer.now() - LEAD_WINDOW_SECS,
    )
    .await?;
    if recent >= i64::from(max) {
        tracing::warn!(
            dealership_id,
            session_id,
            max_per_hour = max,
            "lead not emailed: the dealership's lead emails are throttled (email.lead_max_per_hour); \
             the conversation is in the admin pages"
        );
        return Ok(LeadEmail::Throttled);
    }
    let anonymous = session.user_id.is_none();
    // Only a signed-in user's conversation vouches for the address; even then it must
    // look like one.
    let reply_to = contact
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !anonymous && e.parse::<lettre::Address>().is_ok());
    let session_url = mailer.url(&format!("{SESSION_PATH}{}", session.id));
    let context = context! {
        dealership => dealership.name,
        summary => summary.trim(),
        contact => minijinja::Value::from(minijinja::value::Serde(contact)),
        unverified => anonymous,
        session_id => &session.id,
        session_url => session_url,
        created_at => rfc3339(session.started_at),
    };
    let id = mailer
        .queue_about_session("lead", context, to, reply_to, dealership_id, &session.id)
        .await?;
    Ok(LeadEmail::Queued(id))
}
