//! Metering: what each dealership's conversations cost, summed per UTC day in
//! `usage_daily` (kept when transcripts are deleted), plus month-to-date totals for
//! the monthly caps.

use adam_actors::ports::TurnUsage;

use super::{Db, Tenant, on_pool};

/// One dealership's totals for one day (or a longer period, summed).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct UsageRow {
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Sessions started.
    pub sessions: i64,
    /// Turns answered (or cut short).
    pub turns: i64,
    /// Seconds of speech transcribed.
    pub stt_seconds: f64,
    /// Language-model prompt tokens.
    pub prompt_tokens: i64,
    /// Language-model completion tokens.
    pub completion_tokens: i64,
    /// Characters synthesised.
    pub tts_characters: i64,
    /// Seconds of customer audio received.
    pub audio_in_seconds: f64,
    /// Seconds of answer audio played.
    pub audio_out_seconds: f64,
}

/// What to add to a day's totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta<'a> {
    /// Sessions started (0 or 1).
    pub sessions: i64,
    /// Turns (0 or 1).
    pub turns: i64,
    /// The work.
    pub usage: Option<&'a TurnUsage>,
}

/// `YYYY-MM-DD` of a unix time, UTC.
pub fn day_of(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "1970-01-01".into())
}

/// `YYYY-MM-01` of the month holding `unix` (UTC).
pub fn month_start(unix: i64) -> String {
    let day = day_of(unix);
    format!("{}-01", &day[..7])
}

/// The upsert adding a [`Delta`] to the day of one session's dealership.
pub(crate) const ADD_FOR_SESSION: &str = "INSERT INTO usage_daily (dealership_id, day, sessions, \
    turns, stt_seconds, prompt_tokens, completion_tokens, tts_characters, audio_in_seconds, \
    audio_out_seconds) \
    SELECT dealership_id, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM sessions WHERE id = $1 \
    ON CONFLICT (dealership_id, day) DO UPDATE SET \
    sessions = usage_daily.sessions + excluded.sessions, \
    turns = usage_daily.turns + excluded.turns, \
    stt_seconds = usage_daily.stt_seconds + excluded.stt_seconds, \
    prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
    completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, \
    tts_characters = usage_daily.tts_characters + excluded.tts_characters, \
    audio_in_seconds = usage_daily.audio_in_seconds + excluded.audio_in_seconds, \
    audio_out_seconds = usage_daily.audio_out_seconds + excluded.audio_out_seconds";

/// [`ADD_FOR_SESSION`] with its arguments bound, ready to run on either database inside
/// the caller's transaction (so a turn is counted exactly when it is stored).
macro_rules! add_for_session {
    ($session_id:expr, $at:expr, $delta:expr) => {{
        let delta: $crate::db::usage::Delta<'_> = $delta;
        let u = delta.usage.cloned().unwrap_or_default();
        sqlx::query($crate::db::usage::ADD_FOR_SESSION)
            .bind($session_id)
            .bind($crate::db::usage::day_of($at))
            .bind(delta.sessions)
            .bind(delta.turns)
            .bind(u.stt_seconds)
            .bind($crate::db::usage::saturating_i64(u.prompt_tokens))
            .bind($crate::db::usage::saturating_i64(u.completion_tokens))
            .bind($crate::db::usage::saturating_i64(u.tts_characters))
            .bind(u.audio_in_seconds)
            .bind(u.audio_out_seconds)
    }};
}
pub(crate) use add_for_session;

/// Adds `delta` to the day of `at` of the dealership owning `session_id`.
pub async fn add(db: &Db, session_id: &str, at: i64, delta: Delta<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        add_for_session!(session_id, at, delta)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// `v` as a database integer.
pub(crate) fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Daily rows of the dealerships the tenant may see, from `from` to `to` (inclusive
/// `YYYY-MM-DD`), by dealership then day.
pub async fn daily(
    db: &Db,
    tenant: Tenant<'_>,
    from: &str,
    to: &str,
) -> Result<Vec<UsageRow>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, UsageRow>(
            "SELECT dealership_id, day, sessions, turns, stt_seconds, prompt_tokens, \
             completion_tokens, tts_characters, audio_in_seconds, audio_out_seconds \
             FROM usage_daily WHERE ($1 IS NULL OR dealership_id = $1) \
             AND day >= $2 AND day <= $3 ORDER BY dealership_id, day",
        )
        .bind(tenant.filter())
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })
}

/// Turns and seconds of customer audio since `from` (`YYYY-MM-DD`) of every dealership the
/// tenant may see that used any: `(dealership, turns, seconds)`.
pub async fn since_by_dealership(
    db: &Db,
    tenant: Tenant<'_>,
    from: &str,
) -> Result<Vec<(String, i64, f64)>, sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (String, i64, f64)>(
            "SELECT dealership_id, CAST(COALESCE(SUM(turns), 0) AS BIGINT), \
             CAST(COALESCE(SUM(audio_in_seconds), 0) AS DOUBLE PRECISION) \
             FROM usage_daily WHERE ($1 IS NULL OR dealership_id = $1) AND day >= $2 \
             GROUP BY dealership_id",
        )
        .bind(tenant.filter())
        .bind(from)
        .fetch_all(pool)
        .await
    })
}

/// Turns and seconds of customer audio of one dealership since `from` (`YYYY-MM-DD`).
pub async fn since(db: &Db, dealership_id: &str, from: &str) -> Result<(i64, f64), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query_as::<_, (i64, f64)>(
            "SELECT CAST(COALESCE(SUM(turns), 0) AS BIGINT), \
             CAST(COALESCE(SUM(audio_in_seconds), 0) AS DOUBLE PRECISION) \
             FROM usage_daily WHERE dealership_id = $1 AND day >= $2",
        )
        .bind(dealership_id)
        .bind(from)
        .fetch_one(pool)
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_are_utc() {
        // 2026-12-07T23:59:59Z and a second later.
        assert_eq!(day_of(1_796_687_999), "2026-12-07");
        assert_eq!(day_of(1_796_688_000), "2026-12-08");
        assert_eq!(month_start(1_796_688_000), "2026-12-01");
    }
}
