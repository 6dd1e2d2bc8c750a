//! One-time WebSocket tickets: issued by `POST /v1/sessions`, valid a few seconds, used
//! once, so no long-lived token ever appears in a URL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use adam_actors::ports::AvatarSettings;
use rand::Rng;
use rand::distr::Alphanumeric;

/// What a ticket grants.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// Session id the ticket opens.
    pub session_id: String,
    /// Id of the dealership (tenant) it belongs to.
    pub tenant: String,
    /// Signed-in user, if any.
    pub user_id: Option<String>,
    /// Origins allowed to open the socket (empty: no Origin check beyond the CORS list).
    pub allowed_origins: Vec<String>,
    /// Instructions that set the assistant's character and tone.
    pub persona: String,
    /// Voice the speech provider speaks with (its own voice name).
    pub voice: String,
    /// The dealership's avatar.
    pub avatar: AvatarSettings,
    /// The dealership's IANA time zone.
    #[serde(default)]
    pub timezone: String,
    /// The concurrent-session slot reserved for it.
    #[serde(default)]
    pub slot: Option<super::quota::Slot>,
    /// The dealership's limits in force when it was granted.
    #[serde(default)]
    pub limits: crate::limits::LimitSettings,
}

/// A fresh random ticket (40 alphanumerics).
pub fn new_ticket() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// Ticket store.
#[derive(Debug)]
pub struct Tickets {
    ttl: Duration,
    map: Mutex<HashMap<String, (Grant, Instant)>>,
}

impl Tickets {
    /// A store whose tickets live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds a ticket lives.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// The lifetime of a ticket.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a ticket for `grant`.
    pub fn issue(&self, grant: Grant) -> String {
        let ticket = new_ticket();
        self.insert(ticket.clone(), grant);
        ticket
    }

    /// Keeps `ticket` for `grant` in this node's store.
    pub fn insert(&self, ticket: String, grant: Grant) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, expires)| *expires > now);
        map.insert(ticket, (grant, now + self.ttl));
    }

    /// Consumes a ticket for `session_id`; `None` if unknown, used, expired or for
    /// another session.
    pub fn redeem(&self, ticket: &str, session_id: &str) -> Option<Grant> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (grant, expires) = map.remove(ticket)?;
        (expires > Instant::now() && grant.session_id == session_id).then_some(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> Grant {
        Grant {
            session_id: id.into(),
            tenant: "d".into(),
            user_id: None,
            allowed_origins: vec![],
            persona: String::new(),
            voice: "default".into(),
            avatar: AvatarSettings::default(),
            timezone: String::new(),
            slot: None,
            limits: Default::default(),
        }
    }

    #[test]
    fn a_ticket_works_once_and_only_for_its_session() {
        let t = Tickets::new(Duration::from_secs(30));
        let ticket = t.issue(grant("s1"));
        assert!(
            t.redeem(&ticket, "s2").is_none(),
            "wrong session (and now burnt)"
        );
        let ticket = t.issue(grant("s1"));
        assert!(t.redeem(&ticket, "s1").is_some());
        assert!(t.redeem(&ticket, "s1").is_none(), "used");
        let expired = Tickets::new(Duration::ZERO);
        let ticket = expired.issue(grant("s1"));
        assert!(expired.redeem(&ticket, "s1").is_none(), "expired");
    }
}
