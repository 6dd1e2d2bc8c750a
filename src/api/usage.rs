//! `/v1/usage`: what each dealership's conversations cost, by UTC day — sessions, turns,
//! seconds of speech transcribed, language-model tokens, characters synthesised, audio
//! in and out — with the period's totals and the dealership's monthly caps.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use crate::auth::{Principal, Role};
use crate::db::dealerships;
use crate::db::usage::{self, UsageRow};
use crate::realtime::quota;
use crate::state::AppState;

/// The period and the dealership.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC; default: the first of this month).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC; default: today). At most 366 days after `from`.
    pub to: Option<String>,
    /// Only this dealership (super_admin; others always see their own).
    pub dealership_id: Option<String>,
}

/// Work done in a day or a period.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    /// Sessions started.
    pub sessions: i64,
    /// Turns (answers started, including those cut short).
    pub turns: i64,
    /// Seconds of customer speech transcribed.
    pub stt_seconds: f64,
    /// Language-model prompt tokens (cloud LLMs; the embedded engine reports none).
    pub prompt_tokens: i64,
    /// Language-model completion tokens.
    pub completion_tokens: i64,
    /// Characters synthesised to speech.
    pub tts_characters: i64,
    /// Seconds of customer audio received.
    pub audio_in_seconds: f64,
    /// Seconds of answer audio played.
    pub audio_out_seconds: f64,
}

impl UsageTotals {
    fn add(&mut self, row: &UsageRow) {
        self.sessions += row.sessions;
        self.turns += row.turns;
        self.stt_seconds += row.stt_seconds;
        self.prompt_tokens += row.prompt_tokens;
        self.completion_tokens += row.completion_tokens;
        self.tts_characters += row.tts_characters;
        self.audio_in_seconds += row.audio_in_seconds;
        self.audio_out_seconds += row.audio_out_seconds;
    }
}

/// One day of one dealership.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The day's work.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// One dealership's usage over the period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DealershipUsage {
    /// Id of the dealership (tenant) it belongs to.
    pub dealership_id: String,
    /// Its name.
    pub name: String,
    /// The period's totals.
    pub totals: UsageTotals,
    /// Days with any use, oldest first.
    pub days: Vec<UsageDay>,
    /// Monthly cap on turns (0: none).
    pub monthly_turns_cap: u64,
    /// Monthly cap on minutes of customer audio (0: none).
    pub monthly_audio_minutes_cap: u64,
    /// Turns this calendar month (UTC).
    pub month_turns: i64,
    /// Minutes of customer audio this calendar month.
    pub month_audio_minutes: f64,
}

/// The usage report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Each dealership the caller may see.
    pub dealerships: Vec<DealershipUsage>,
}

fn parse_day(field: &str, value: &str) -> Result<time::Date, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format)
        .map_err(|_| ApiError::validation(field, "must be a date like 2026-12-31"))
}

/// Per-dealership usage by day: a dealership_admin sees their dealership's, a
/// super_admin every dealership's or one with `?dealership_id=`.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("bearer" = [])),
    params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    principal.require(&[Role::SuperAdmin, Role::DealershipAdmin])?;
    let now = state.clock.now();
    let today = usage::day_of(now);
    let from = q.from.unwrap_or_else(|| usage::month_start(now));
    let to = q.to.unwrap_or_else(|| today.clone());
    let (first, last) = (parse_day("from", &from)?, parse_day("to", &to)?);
    if last < first {
        return Err(ApiError::validation("to", "must not be before from"));
    }
    if (last - first).whole_days() > 366 {
        return Err(ApiError::validation(
            "to",
            "must be at most 366 days after from",
        ));
    }
    let scope = principal.list_scope(q.dealership_id.as_deref());
    let rows = usage::daily(&state.db, scope, &from, &to).await?;
    let month = usage::month_start(now);
    let this_month: std::collections::HashMap<String, (i64, f64)> =
        usage::since_by_dealership(&state.db, scope, &month)
            .await?
            .into_iter()
            .map(|(id, turns, seconds)| (id, (turns, seconds)))
            .collect();
    let mut out = Vec::new();
    for d in dealerships::list(&state.db, scope).await? {
        let limits = quota::limits_of(&state, &d);
        let mine: Vec<&UsageRow> = rows.iter().filter(|r| r.dealership_id == d.id).collect();
        let mut totals = UsageTotals::default();
        let mut days = Vec::with_capacity(mine.len());
        for row in mine {
            totals.add(row);
            let mut day = UsageTotals::default();
            day.add(row);
            days.push(UsageDay {
                day: row.day.clone(),
                totals: day,
            });
        }
        let (month_turns, month_audio_seconds) = this_month.get(&d.id).copied().unwrap_or_default();
        out.push(DealershipUsage {
            dealership_id: d.id,
            name: d.name,
            totals,
            days,
            monthly_turns_cap: limits.monthly_turns,
            monthly_audio_minutes_cap: limits.monthly_audio_minutes,
            month_turns,
            month_audio_minutes: month_audio_seconds / 60.0,
        });
    }
    Ok(Json(UsageReport {
        from,
        to,
        dealerships: out,
    }))
}
