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
