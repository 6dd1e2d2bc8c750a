//! Privacy: how long transcripts are kept, erasing what Adam holds about one caller, and
//! the notice that a conversation is recorded.

use serde::{Deserialize, Serialize};

/// `[privacy]`: the node's defaults for every dealership.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Days a finished conversation's transcript is kept (0: forever); a dealership may
    /// choose its own (`retention_days`).
    pub retention_days: u32,
    /// The notice the web client and widget show before a conversation starts; a
    /// dealership may choose its own (`recording_notice`).
    pub recording_notice: String,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            retention_days: 0,
            recording_notice: "This conversation is recorded and transcribed so that we can \
                               answer you and improve our service."
                .into(),
        }
    }
}
