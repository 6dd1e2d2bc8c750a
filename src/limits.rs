//! Usage limits: what one dealership's customers may use of a node, so that no visitor —
//! and no dealership — can take the service away from another. The node's `[limits]`
//! are the defaults; a super_admin overrides them per dealership (`limits` of
//! `PATCH /v1/dealerships/{id}`). Enforced in [`crate::realtime::quota`] (session
//! admission) and by each session (length, turn rate, stored text).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `[limits]`: the node's defaults for every dealership.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Live sessions of anonymous visitors (the public embed key) per dealership.
    pub anonymous_sessions: u32,
    /// Live sessions of signed-in users per dealership.
    pub signed_in_sessions: u32,
    /// New sessions one client IP may start per minute at one dealership (IPv6 clients
    /// are counted by /64, the block one subscriber usually holds).
    pub sessions_per_minute_per_ip: u32,
    /// Longest conversation, seconds; the session then closes with `session_limit`.
    pub max_session_secs: u64,
    /// Answers one session may start per minute; more get `rate_limited` error events,
    /// and a session that keeps trying closes with 1008.
    pub turns_per_minute: u32,
    /// Characters of each side of a turn stored in the transcript.
    pub max_turn_chars: usize,
    /// Turns per calendar month (UTC) per dealership; 0: no cap.
    pub monthly_turns: u64,
    /// Minutes of customer audio per calendar month (UTC) per dealership; 0: no cap.
    pub monthly_audio_minutes: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            anonymous_sessions: 100,
            signed_in_sessions: 200,
            sessions_per_minute_per_ip: 20,
            max_session_secs: 3_600,
            turns_per_minute: 20,
            max_turn_chars: 4_000,
            monthly_turns: 0,
            monthly_audio_minutes: 0,
        }
    }
}

/// One dealership's overrides of the node's `[limits]` (absent: the node's value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DealershipLimits {
    /// Live anonymous (embed-key) sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_sessions: Option<u32>,
    /// Live signed-in sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in_sessions: Option<u32>,
    /// New sessions per minute per client IP (/64 for IPv6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_per_minute_per_ip: Option<u32>,
    /// Longest conversation, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_secs: Option<u64>,
    /// Answers per minute per session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turns_per_minute: Option<u32>,
    /// Characters stored per side of a turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_turn_chars: Option<usize>,
    /// Turns per calendar month (0: no cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_turns: Option<u64>,
    /// Minutes of customer audio per calendar month (0: no cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_audio_minutes: Option<u64>,
}

impl DealershipLimits {
    /// Parses the stored JSON; a row that does not parse (it never should) falls back to
    /// the node's defaults rather than refusing every session.
    pub fn from_json(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored dealership limits do not parse; using the node's");
            Self::default()
        })
    }

    /// The first out-of-range value: `(field, problem)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        fn range<T: PartialOrd + std::fmt::Display + Copy>(
            field: &'static str,
            value: Option<T>,
            min: T,
            max: T,
        ) -> Result<(), (&'static str, String)> {
            match value {
                Some(v) if v < min || v > max => {
                    Err((field, format!("must be between {min} and {max}")))
                }
                _ => Ok(()),
            }
        }
        range("anonymous_sessions", self.anonymous_sessions, 0, 100_000)?;
        range("signed_in_sessions", self.signed_in_sessions, 0, 100_000)?;
        range(
            "sessions_per_minute_per_ip",
            self.sessions_per_minute_per_ip,
            1,
            10_000,
        )?;
        range("max_session_secs", self.max_session_secs, 60, 86_400)?;
        range("turns_per_minute", self.turns_per_minute, 1, 600)?;
        range("max_turn_chars", self.max_turn_chars, 100, 100_000)?;
        range("monthly_turns", self.monthly_turns, 0, 1_000_000_000)?;
        range(
            "monthly_audio_minutes",
            self.monthly_audio_minutes,
            0,
            100_000_000,
        )?;
        Ok(())
    }

    /// These overrides over the node's defaults.
    pub fn over(&self, node: &LimitSettings) -> LimitSettings {
        LimitSettings {
            anonymous_sessions: self.anonymous_sessions.unwrap_or(node.anonymous_sessions),
            signed_in_sessions: self.signed_in_sessions.unwrap_or(node.signed_in_sessions),
            sessions_per_minute_per_ip: self
                .sessions_per_minute_per_ip
                .unwrap_or(node.sessions_per_minute_per_ip),
            max_session_secs: self.max_session_secs.unwrap_or(node.max_session_secs),
            turns_per_minute: self.turns_per_minute.unwrap_or(node.turns_per_minute),
            max_turn_chars: self.max_turn_chars.unwrap_or(node.max_turn_chars),
            monthly_turns: self.monthly_turns.unwrap_or(node.monthly_turns),
            monthly_audio_minutes: self
                .monthly_audio_minutes
                .unwrap_or(node.monthly_audio_minutes),
        }
    }
}

impl LimitSettings {
    /// The node's values, checked like a dealership's.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        DealershipLimits {
            anonymous_sessions: Some(self.anonymous_sessions),
            signed_in_sessions: Some(self.signed_in_sessions),
            sessions_per_minute_per_ip: Some(self.sessions_per_minute_per_ip),
            max_session_secs: Some(self.max_session_secs),
            turns_per_minute: Some(self.turns_per_minute),
            max_turn_chars: Some(self.max_turn_chars),
            monthly_turns: Some(self.monthly_turns),
            monthly_audio_minutes: Some(self.monthly_audio_minutes),
        }
        .check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_absent_fields_keep_the_nodes_value() {
        let node = LimitSettings::default();
        let d: DealershipLimits =
            serde_json::from_str(r#"{"anonymous_sessions": 3, "monthly_turns": 500}"#)
                .expect("overrides parse");
        let effective = d.over(&node);
        assert_eq!(effective.anonymous_sessions, 3);
        assert_eq!(effective.monthly_turns, 500);
        assert_eq!(effective.signed_in_sessions, node.signed_in_sessions);
        assert_eq!(effective.turns_per_minute, node.turns_per_minute);
        assert_eq!(
            serde_json::to_string(&d).expect("serialises"),
            r#"{"anonymous_sessions":3,"monthly_turns":500}"#
        );
    }

    #[test]
    fn out_of_range_and_unknown_fields_are_refused() {
        let d = DealershipLimits {
            turns_per_minute: Some(0),
            ..DealershipLimits::default()
        };
        assert_eq!(d.check().expect_err("0 refused").0, "turns_per_minute");
        assert!(serde_json::from_str::<DealershipLimits>(r#"{"sessions": 3}"#).is_err());
        assert!(LimitSettings::default().check().is_ok());
        assert_eq!(
            DealershipLimits::from_json("not json"),
            DealershipLimits::default()
        );
    }
}
