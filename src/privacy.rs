//! Privacy: how long transcripts are kept ([`retention`]), erasing what Adam holds about
//! one caller ([`contact`], `POST /v1/privacy/erase` in [`crate::api::privacy`]), and the
//! notice that a conversation is recorded (in the session ticket).

pub mod contact;
pub mod retention;

use serde::{Deserialize, Serialize};

use crate::db::dealerships::Dealership;

/// `[privacy]`: the node's defaults for every dealership.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Days a finished conversation's transcript is kept (0: forever); a dealership may
    /// choose its own (`retention_days`).
    pub retention_days: u32,
    /// How often this node deletes the transcripts past their retention, seconds (the
    /// first pass runs shortly after start).
    pub retention_interval_secs: u64,
    /// The notice the web client and widget show before a conversation starts; a
    /// dealership may choose its own (`recording_notice`).
    pub recording_notice: String,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            retention_days: 0,
            retention_interval_secs: 3_600,
            recording_notice: "This conversation is recorded and transcribed so that we can \
                               answer you and improve our service."
                .into(),
        }
    }
}

impl PrivacySettings {
    /// Checks values that parse but cannot work: `(dotted key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let notice = self.recording_notice.trim();
        if notice.is_empty() || notice.chars().count() > 500 {
            return Err((
                "privacy.recording_notice",
                "must be 1 to 500 characters".into(),
            ));
        }
        if self.retention_days > 36_500 {
            return Err((
                "privacy.retention_days",
                "must be between 0 (keep forever) and 36500".into(),
            ));
        }
        if !(1..=604_800).contains(&self.retention_interval_secs) {
            return Err((
                "privacy.retention_interval_secs",
                "must be between 1 and 604800 (a week)".into(),
            ));
        }
        Ok(())
    }

    /// Days `dealership`'s finished transcripts are kept: its own choice, else the node's
    /// (0: forever).
    pub fn retention_days(&self, dealership: &Dealership) -> i64 {
        dealership
            .retention_days
            .unwrap_or(i64::from(self.retention_days))
    }

    /// The recording notice `dealership`'s customers see: its own text, else the node's.
    pub fn recording_notice(&self, dealership: &Dealership) -> String {
        dealership
            .recording_notice
            .clone()
            .unwrap_or_else(|| self.recording_notice.clone())
    }
}
