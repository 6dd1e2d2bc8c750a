//! Wall clock in unix seconds, injectable so token expiry and throttling are tested
//! without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Source of "now" for everything that expires.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Inner>);

#[derive(Debug)]
enum Inner {
    System,
    /// Offset added to the system clock; tests move it forward.
    Shifted(AtomicI64),
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self(Arc::new(Inner::System))
    }

    /// A clock that starts at the real time and can be moved forward with [`Clock::advance`].
    pub fn adjustable() -> Self {
        Self(Arc::new(Inner::Shifted(AtomicI64::new(0))))
    }

    /// Seconds since the unix epoch.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match &*self.0 {
            Inner::System => real,
            Inner::Shifted(offset) => real + offset.load(Ordering::SeqCst),
        }
    }

    /// Moves an adjustable clock forward; no effect on the system clock.
    pub fn advance(&self, secs: i64) {
        if let Inner::Shifted(offset) = &*self.0 {
            offset.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

/// RFC 3339 text for a unix timestamp, as the API shows times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
